"""SFT end to end on a synthetic demonstration set: it learns, it checkpoints in the model
layout, and the RL trainer can start from its checkpoint."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from configs import film_evi, sft
from rl2vla_jax import checkpoints
from rl2vla_jax.data import demos
from rl2vla_jax.data.prompt import tiny_tokenizer
from rl2vla_jax.models.trainable import flatten
from rl2vla_jax.policy import loading
from rl2vla_jax.sft import data as sft_data
from rl2vla_jax.sft import loop as sft_loop
from rl2vla_jax.train import builders, hparams
from rl2vla_jax.validation import ConfigError


def _config(data_dir, **sft_changes):
    config = sft.get_config()
    config.data_dir = data_dir
    config.val_fraction = 0.25
    config.sft.learning_rate = 3e-3
    config.sft.steps, config.sft.eval_every, config.sft.checkpoint_every = 40, 10, 20
    for key, value in sft_changes.items():
        config.sft[key] = value
    return config


def test_split_is_by_episode_and_stream_is_deterministic(synthetic_demos):
    split = sft_data.split_episodes(synthetic_demos, 0.25, seed=0)
    assert len(split.val_episodes) == 3 and len(split.train_episodes) == 9
    source = demos.DemoSteps(synthetic_demos, decode_images=False)
    val_eps = {source[int(i)]["episode"] for i in split.val_indices}
    train_eps = {source[int(i)]["episode"] for i in split.train_indices}
    assert val_eps == set(split.val_episodes) and not val_eps & train_eps
    stats = source.statistics()[demos.DATASET_NAME]["action"]
    to_example = sft_data.StepToExample(tiny_tokenizer(), stats, 384, 28, 48, 448, augment=True)
    first = next(sft_data.train_stream(synthetic_demos, split.train_indices, to_example, 4, seed=3))
    again = next(sft_data.train_stream(synthetic_demos, split.train_indices, to_example, 4, seed=3))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])  # same seed, same batch, augmentation included
    assert first["images"].shape == (4, 28, 28, 3) and first["images"].dtype == np.uint8
    assert first["tokens"].shape == (4, 7) and first["tokens"].min() >= 0 and first["tokens"].max() <= 255
    # Resuming at step 1 gives the uninterrupted stream's second batch.
    stream = sft_data.train_stream(synthetic_demos, split.train_indices, to_example, 4, seed=3)
    next(stream)
    second = next(stream)
    resumed = next(
        sft_data.train_stream(synthetic_demos, split.train_indices, to_example, 4, seed=3, start_step=1)
    )
    np.testing.assert_array_equal(second["tokens"], resumed["tokens"])


def test_augmentation_changes_pixels_but_not_shape():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (41, 37, 3), dtype=np.uint8)
    out = sft_data.augment_image(image, np.random.default_rng(1))
    assert out.dtype == np.uint8 and out.shape == (round(41 * 0.9**0.5), round(37 * 0.9**0.5), 3)
    assert not np.array_equal(out, image[: out.shape[0], : out.shape[1]])


@pytest.mark.slow
def test_sft_learns_checkpoints_and_feeds_the_rl_trainer(synthetic_demos, tmp_path):
    workdir = str(tmp_path / "sft")
    result = sft_loop.train(_config(synthetic_demos), workdir)
    rows = result["rows"]
    assert [row["step"] for row in rows] == [10, 20, 30, 40]
    assert result["compiles"] == 1  # one program for every step
    first, last = rows[0], rows[-1]
    assert last["train_loss"] < first["train_loss"] - 1.0, (first["train_loss"], last["train_loss"])
    assert last["val_loss"] < first["val_loss"]
    # Held-out episodes are predictable only from the image: far above chance and above
    # always answering the train split's most frequent bin.
    assert last["val_accuracy"] > 0.9 > 1 / 256, last
    assert last["val_accuracy"] > last["val_majority_accuracy"], last
    # Acting (each token decoded from the policy's own previous ones), it must beat it too.
    assert last["val_greedy_accuracy"] > last["val_majority_accuracy"], last
    assert all(0 <= last[f"val_accuracy_dim{d}"] <= 1 for d in range(7))

    # Model-checkpoint layout with the dataset's statistics and the tokenizer.
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["20", "40"]
    ckpt = result["checkpoint"]
    assert ckpt.endswith(os.path.join("checkpoints", "40"))
    params, model_cfg, assets = checkpoints.load_policy(ckpt)
    with open(os.path.join(synthetic_demos, demos.STATISTICS)) as f:
        assert assets["norm_stats"] == json.load(f)
    assert assets["tokenizer"] and os.path.isfile(assets["tokenizer"])
    assert model_cfg.lora is not None and model_cfg.lora.rank == sft.get_config().lora.rank

    # The RL trainer starts from it: same model, the SFT's LoRA factors as its trainable params.
    rl_config = film_evi.get_config()
    rl_config.init_from = ckpt
    hp = hparams.rl_hparams(rl_config)
    rl_model_cfg = loading.model_config(rl_config, checkpoints.load_model_config(ckpt))
    assert rl_model_cfg.lora == model_cfg.lora
    rl_params, _ = checkpoints.with_lora(params, rl_model_cfg, rl_config.adapter, jax.random.PRNGKey(0))
    state = builders.initial_state(
        rl_config, hp, rl_model_cfg, builders.make_critic(hp, rl_config), rl_params
    )
    sft_flat = flatten(params)
    assert set(state.trainable) == {k for k in sft_flat if k.endswith(("lora_a", "lora_b"))}
    for key, value in state.trainable.items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(sft_flat[key]))
    assert any(np.abs(np.asarray(v)).max() > 0 for k, v in state.trainable.items() if k.endswith("lora_b"))

    # The same command again finds the last step done and leaves the checkpoints as they are.
    again = sft_loop.train(_config(synthetic_demos), workdir)
    assert again["rows"] == [] and again["checkpoint"] == ckpt


@pytest.mark.slow
def test_sft_resume_is_bit_exact_and_predict_action_reads_the_run(synthetic_demos, tmp_path):
    changes = dict(eval_every=2, checkpoint_every=3)
    full = sft_loop.train(_config(synthetic_demos, steps=6, **changes), str(tmp_path / "full"))
    workdir = str(tmp_path / "halves")
    half = sft_loop.train(_config(synthetic_demos, steps=3, **changes), workdir)
    resumed = sft_loop.train(_config(synthetic_demos, steps=6, **changes), workdir)
    assert [row["step"] for row in half["rows"]] == [2, 3]
    assert [row["step"] for row in resumed["rows"]] == [4, 6]

    def without_timing(rows):
        timing = ("steps_per_s", "data_wait_fraction")
        return [{k: v for k, v in row.items() if k not in timing} for row in rows]

    assert without_timing(resumed["rows"]) == without_timing(full["rows"][1:])  # AdamW state restored
    full_params, _, _ = checkpoints.load_policy(str(tmp_path / "full"))
    resumed_params, _, _ = checkpoints.load_policy(workdir)
    for a, b in zip(jax.tree.leaves(full_params), jax.tree.leaves(resumed_params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # predict_action on the SFT run directory (its latest step).
    image = tmp_path / "frame.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (31, 29, 3), dtype=np.uint8)).save(image)
    proc = subprocess.run(
        [sys.executable, "-m", "rl2vla_jax.predict_action", f"--checkpoint={workdir}", f"--image={image}",
         "--instruction=put the carrot on the plate"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    cfg = checkpoints.load_model_config(workdir)
    assert len(result["tokens"]) == 7
    assert all(cfg.action_token_begin <= t < cfg.action_token_end for t in result["tokens"]), result
    with open(os.path.join(synthetic_demos, demos.STATISTICS)) as f:
        stats = next(iter(json.load(f).values()))["action"]
    # Un-normalised with the dataset's statistics: inside [q01, q99] on the masked dimensions.
    for value, low, high in zip(result["action"][:6], stats["q01"], stats["q99"]):
        assert low - 1e-6 <= value <= high + 1e-6


@pytest.mark.slow
def test_resume_refuses_what_it_cannot_change(synthetic_demos, tmp_path):
    """A cosine run refuses a changed `sft.steps` (it sets the decay) and any run a changed lr
    (the optimizer state holds it, so it would be ignored); the same config resumes, and a
    constant-lr run may be extended (test_sft_resume_is_bit_exact_...)."""
    workdir = str(tmp_path / "run")
    cosine = dict(lr_schedule="cosine", warmup_steps=1, eval_every=2, checkpoint_every=2)
    sft_loop.train(_config(synthetic_demos, steps=2, **cosine), workdir)
    with pytest.raises(ConfigError) as err:
        sft_loop.train(_config(synthetic_demos, steps=4, **cosine), workdir)
    message = str(err.value)
    assert message.startswith(
        f"resuming {workdir}/checkpoints/2: config.sft.steps=4 differs from the run's sft.steps=2"
    )
    assert "\n" not in message and "--config.init_from" in message
    with pytest.raises(
        ConfigError, match="config.sft.lr_schedule='constant', config.sft.warmup_steps=0, config"
    ):
        sft_loop.train(_config(synthetic_demos, steps=4, eval_every=2, checkpoint_every=2), workdir)
    with pytest.raises(
        ConfigError, match="config.sft.learning_rate=0.001 differs from the run's sft.learning_rate=0.003"
    ):
        sft_loop.train(_config(synthetic_demos, steps=2, learning_rate=1e-3, **cosine), workdir)
    assert sorted(os.listdir(os.path.join(workdir, checkpoints.CHECKPOINTS))) == ["2"]  # nothing written
    assert sft_loop.train(_config(synthetic_demos, steps=2, **cosine), workdir)["rows"] == []


def test_missing_data_dir_is_one_line_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "rl2vla_jax.sft", "--config=configs/sft.py", f"--config.data_dir={tmp_path}/none",
         f"--workdir={tmp_path}/w"],
        capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no demonstrations in"), proc.stderr


def test_greedy_metrics_score_the_policys_own_tokens():
    """Acting accuracy is 1 for exactly the tokens the policy decodes and drops for others."""
    from rl2vla_jax.models import config as model_config_lib
    from rl2vla_jax.models.init import init_params
    from rl2vla_jax.policy import preprocess, sampling
    from rl2vla_jax.sft import step as sft_step

    cfg = model_config_lib.get_preset("tiny")
    params = init_params(cfg, jax.random.PRNGKey(3))
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (3, cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
    prompt_ids = rng.integers(3, 300, (3, 11)).astype(np.int32)
    prompt_mask = np.ones((3, 11), bool)
    prompt_mask[1, 7:] = False
    out = sampling.sample_actions(
        params, cfg, preprocess.pixel_values(images), prompt_ids, prompt_mask, jax.random.key(9), 0.0
    )
    own = np.asarray(out["tokens"])
    batch = dict(images=images, prompt_ids=prompt_ids, prompt_mask=prompt_mask, tokens=own)
    same = sft_step.greedy_metrics(params, cfg, batch)
    np.testing.assert_array_equal(same["greedy_dim_accuracy"], np.ones((3, 7)))
    np.testing.assert_array_equal(same["greedy_dim_l1"], np.zeros((3, 7)))
    other = own.copy()
    other[:, 0] = (other[:, 0] + 17) % 256  # a wrong first token
    moved = sft_step.greedy_metrics(params, cfg, batch | {"tokens": other})
    np.testing.assert_array_equal(moved["greedy_dim_accuracy"][:, 0], np.zeros(3))
    np.testing.assert_array_equal(moved["greedy_dim_accuracy"][:, 1:], np.ones((3, 6)))
    assert np.all(np.asarray(moved["greedy_dim_l1"][:, 0]) > 0.1)
