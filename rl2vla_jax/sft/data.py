"""The SFT input pipeline: demonstration steps streamed from ArrayRecord shards by grain.

One example = one recorded step, turned into what the policy is trained on:
  images      uint8 [S, S, 3]  the camera frame, optionally augmented, resized with PIL bicubic
  prompt_ids  int32 [L]        OpenVLA's prompt, right-padded to L = config.model.max_prompt_tokens
  prompt_mask bool  [L]
  tokens      int32 [7]        action bin indices 0..255 of the normalised action
Normalisation uses the dataset's own `dataset_statistics.json` (OpenVLA: q01/q99 on masked
dims, the gripper left as is), the same statistics that travel in the checkpoint's assets.

Train and validation are split by EPISODE (a held-out episode shares no frame with training).
The training stream is a grain `MapDataset` (shuffle -> repeat -> map -> batch), so the batch
of step k is a pure function of (seed, k): a resumed run restarts the stream at its step.
"""

from __future__ import annotations

import dataclasses
import functools

import grain
import numpy as np
from PIL import Image, ImageEnhance

from rl2vla_jax.data import demos
from rl2vla_jax.data.action_tokenizer import ActionTokenizer
from rl2vla_jax.data.norm_stats import normalize
from rl2vla_jax.data.prompt import encode_prompts, load_tokenizer
from rl2vla_jax.policy.preprocess import resize_image

# OpenVLA's `image_aug` (in its RLDS pipeline order): random resized crop keeping 90% of the
# area at aspect 1, brightness +-0.2, contrast and saturation x[0.8, 1.2], hue +-0.05.
CROP_AREA = 0.9
BRIGHTNESS = 0.2
CONTRAST = (0.8, 1.2)
SATURATION = (0.8, 1.2)
HUE = 0.05


def augment_image(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [h, w, 3], OpenVLA's training augmentation (on the host)."""
    height, width = image.shape[:2]
    crop_h, crop_w = (max(1, round(np.sqrt(CROP_AREA) * n)) for n in (height, width))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    x = image[top : top + crop_h, left : left + crop_w].astype(np.float32) / 255.0
    x = x + rng.uniform(-BRIGHTNESS, BRIGHTNESS)
    x = (x - x.mean(axis=(0, 1), keepdims=True)) * rng.uniform(*CONTRAST) + x.mean(axis=(0, 1), keepdims=True)
    pil = Image.fromarray(np.round(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8))
    pil = ImageEnhance.Color(pil).enhance(rng.uniform(*SATURATION))
    hsv = np.asarray(pil.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + round(rng.uniform(-HUE, HUE) * 256)) % 256
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))


@dataclasses.dataclass(frozen=True)
class StepToExample:
    """A demonstration record -> a training example (see module docstring). Picklable: the
    tokenizer is loaded lazily in whichever process or thread applies it."""

    tokenizer_path: str
    action_stats: dict
    action_token_end: int
    image_size: int
    prompt_len: int
    vocab_size: int  # the model's llm.vocab_size: which id the prompt's empty token gets
    augment: bool = False

    @functools.cached_property
    def _tokenizer(self):
        return load_tokenizer(self.tokenizer_path)

    @functools.cached_property
    def _action_tokenizer(self):
        return ActionTokenizer(self.action_token_end)

    @functools.cached_property
    def _prompts(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {}  # instruction -> (ids, mask): a dataset has few distinct instructions

    def prompt(self, instruction: str) -> tuple[np.ndarray, np.ndarray]:
        if instruction not in self._prompts:
            ids, mask = encode_prompts(
                self._tokenizer, [instruction], self.prompt_len, vocab_size=self.vocab_size
            )
            self._prompts[instruction] = (ids[0], mask[0])
        return self._prompts[instruction]

    def action_bins(self, actions: np.ndarray) -> np.ndarray:
        return self._action_tokenizer.encode_bins(normalize(actions, self.action_stats)).astype(np.int32)

    def __call__(self, record: dict, rng: np.random.Generator | None = None) -> dict:
        image = record["image"]
        if self.augment and rng is not None:
            image = augment_image(image, rng)
        ids, mask = self.prompt(record["instruction"])
        return {
            "images": resize_image(image, self.image_size),
            "prompt_ids": ids,
            "prompt_mask": mask,
            "tokens": self.action_bins(record["action"]),
        }


@dataclasses.dataclass(frozen=True)
class Split:
    """Step indices of the training and validation episodes, with their actions (no images)."""

    train_indices: np.ndarray
    val_indices: np.ndarray
    train_episodes: list[int]
    val_episodes: list[int]
    actions: np.ndarray  # float32 [num_steps, 7], every step in file order


def split_episodes(directory: str, val_fraction: float, seed: int) -> Split:
    """Hold out round(val_fraction * episodes) whole episodes (at least 1 when val_fraction > 0
    and there are 2+ episodes), chosen at random with `seed`. Reads each record once without
    decoding its image."""
    source = demos.DemoSteps(directory, decode_images=False)
    episode_of_step = np.empty(len(source), np.int64)
    actions = np.empty((len(source), demos.ACTION_DIM), np.float32)
    for index in range(len(source)):
        record = source[index]
        episode_of_step[index] = record["episode"]
        actions[index] = record["action"]
    episodes = sorted(set(episode_of_step.tolist()))
    num_val = round(val_fraction * len(episodes))
    if val_fraction > 0 and len(episodes) > 1:
        num_val = min(max(num_val, 1), len(episodes) - 1)
    order = np.random.default_rng(seed).permutation(len(episodes))
    val_episodes = sorted(episodes[i] for i in order[:num_val])
    is_val = np.isin(episode_of_step, val_episodes)
    return Split(
        train_indices=np.flatnonzero(~is_val),
        val_indices=np.flatnonzero(is_val),
        train_episodes=sorted(set(episodes) - set(val_episodes)),
        val_episodes=val_episodes,
        actions=actions,
    )


class _Subset:
    """A random-access view of some indices of a grain data source."""

    def __init__(self, source, indices):
        self.source, self.indices = source, np.asarray(indices, np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.source[int(self.indices[index])]


def _stack(examples) -> dict[str, np.ndarray]:
    return {key: np.stack([example[key] for example in examples]) for key in examples[0]}


def train_stream(
    directory: str,
    indices: np.ndarray,
    to_example: StepToExample,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    num_threads: int = 4,
    num_workers: int = 0,
):
    """Endless iterator of training batches from step `start_step` on: reshuffled every epoch,
    decoded and augmented by grain threads (or `num_workers` processes) ahead of the device."""
    dataset = grain.MapDataset.source(_Subset(demos.DemoSteps(directory), indices))
    dataset = dataset.shuffle(seed=seed).repeat(None)
    if to_example.augment:
        dataset = dataset.random_map(to_example, seed=seed + 1)
    else:
        dataset = dataset.map(to_example)
    dataset = dataset.batch(batch_size, drop_remainder=True, batch_fn=_stack)
    dataset = dataset[start_step:]
    iterable = dataset.to_iter_dataset(
        grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=max(2 * batch_size, 8))
    )
    if num_workers > 0:
        iterable = iterable.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return iter(iterable)


def validation_arrays(
    directory: str, indices: np.ndarray, to_example: StepToExample, max_examples: int
) -> dict[str, np.ndarray]:
    """The validation examples (at most `max_examples`, evenly spaced over the held-out steps)
    as stacked arrays, decoded once and kept in memory."""
    if len(indices) > max_examples:
        indices = indices[np.linspace(0, len(indices) - 1, max_examples).round().astype(np.int64)]
    dataset = grain.MapDataset.source(_Subset(demos.DemoSteps(directory), indices)).map(to_example)
    return _stack([dataset[i] for i in range(len(dataset))])
