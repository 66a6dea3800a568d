"""The host side of acting: the simulator steps on the host (CPU workers) or its own GPU,
the policy is one jitted call per step, and transitions are gathered into a `Rollout`."""

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from rl2vla_jax.data.action_tokenizer import ActionTokenizer
from rl2vla_jax.data.norm_stats import unnormalize
from rl2vla_jax.data.prompt import encode_prompts
from rl2vla_jax.train.update import Rollout


def to_model_images(images, size: int):
    """Env frames [B, H, W, 3] uint8 -> [B, size, size, 3] uint8. On the host with PIL bicubic
    (as OpenVLA's processor); GPU frames are resized on device."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    if isinstance(images, np.ndarray):
        return np.stack(
            [np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BICUBIC)) for im in images]
        )
    resized = jax.image.resize(images.astype(jnp.float32), (images.shape[0], size, size, 3), "bicubic")
    return jnp.clip(jnp.round(resized), 0, 255).astype(jnp.uint8)


class ActionDecoder:
    """Bin indices [B, 7] -> physical env actions [B, 7]: OpenVLA's de-tokenisation, then
    un-normalisation with the action statistics the policy was trained with."""

    def __init__(self, model_config, action_stats: dict[str, Any]):
        self.tokenizer = ActionTokenizer.from_model_config(model_config)
        self.action_stats = action_stats

    def __call__(self, bins: np.ndarray) -> np.ndarray:
        normalised = self.tokenizer.decode_bins(np.asarray(bins))
        return unnormalize(normalised, self.action_stats).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Actor:
    """What acting needs besides the train state: the envs, the jitted policy step, and the
    translation between env and policy (prompts, images, actions)."""

    env: Any
    act: Any  # jitted update.policy_step with hp, model config and critic bound
    tokenizer: Any
    decoder: ActionDecoder
    image_size: int  # the model's
    prompt_len: int


def collect(actor: Actor, train_state, seeds, rng, temperature, group_ids, keep_frames: bool = False):
    """Run one episode in every env (no auto-reset, as RL4VLA) and return the Rollout plus
    episode statistics and phase times. Prompts are padded to a fixed `prompt_len` so that new
    instructions do not recompile the jitted steps. Returns (rollout, stats, frames of env 0)."""
    env, act, decoder, tokenizer = actor.env, actor.act, actor.decoder, actor.tokenizer
    times = {"simulator": 0.0, "policy": 0.0, "host": 0.0}
    clock = time.perf_counter()
    obs = env.reset(seed=seeds)
    times["simulator"] += time.perf_counter() - clock
    prompt_ids, prompt_mask = encode_prompts(tokenizer, obs.instructions, actor.prompt_len)
    horizon = env.max_episode_steps
    steps: dict[str, list] = {k: [] for k in ("images", "tokens", "log_probs", "values", "rewards", "dones")}
    success_once = np.zeros(env.num_envs, bool)
    entropies, descriptors, frames = [], [], []
    terminated_before = np.zeros(env.num_envs, bool)
    episode_length = np.full(env.num_envs, horizon)
    info = {}
    for t in range(horizon + 1):
        clock = time.perf_counter()
        images = to_model_images(obs.images, actor.image_size)
        if keep_frames:
            frames.append(np.asarray(obs.images[0]))
        times["host"] += time.perf_counter() - clock
        clock = time.perf_counter()
        out = act(train_state, images, prompt_ids, prompt_mask, jax.random.fold_in(rng, t), temperature)
        out = jax.device_get(out)
        times["policy"] += time.perf_counter() - clock
        if t == horizon:  # the state after the last step: only its value is needed (bootstrap)
            bootstrap_value = out["value"]
            break
        clock = time.perf_counter()
        actions = decoder(out["tokens"])
        times["host"] += time.perf_counter() - clock
        clock = time.perf_counter()
        obs, reward, terminated, truncated, info = env.step(actions)
        times["simulator"] += time.perf_counter() - clock
        newly_done = np.asarray(terminated) & ~terminated_before
        episode_length = np.where(newly_done, t + 1, episode_length)
        terminated_before |= np.asarray(terminated)
        success_once |= np.asarray(info["success"])
        for key, value in (
            ("images", images),
            ("tokens", out["tokens"]),
            ("log_probs", out["log_prob"]),
            ("values", out["value"]),
            ("rewards", reward),
            ("dones", terminated),
        ):
            steps[key].append(np.asarray(value))
        entropies.append(out["entropy"])
        descriptors.append(out["descriptor"])
    rollout = Rollout(
        images=np.stack(steps["images"]),
        prompt_ids=np.broadcast_to(prompt_ids, (horizon, *prompt_ids.shape)),
        prompt_mask=np.broadcast_to(prompt_mask, (horizon, *prompt_mask.shape)),
        tokens=np.stack(steps["tokens"]).astype(np.int32),
        log_probs=np.stack(steps["log_probs"]).astype(np.float32),
        values=np.stack(steps["values"]).astype(np.float32),
        rewards=np.stack(steps["rewards"]).astype(np.float32),
        dones=np.stack(steps["dones"]).astype(np.float32),
        bootstrap_value=np.asarray(bootstrap_value, np.float32),
        group_ids=np.asarray(group_ids, np.int32),
    )
    descriptors = np.stack(descriptors)
    stats = {
        "return": float(rollout.rewards.sum(0).mean()),
        "success": float(np.mean(info.get("success", np.zeros(1)))),  # at the last step
        "success_once": float(success_once.mean()),
        "episode_length": float(episode_length.mean()),
        "policy_entropy": float(np.mean(entropies)),
        "descriptor_mean": float(descriptors.mean()),
        "descriptor_std": float(descriptors.std()),
        "time_simulator": times["simulator"],
        "time_policy": times["policy"],
        "time_host": times["host"],
    }
    return rollout, stats, frames
