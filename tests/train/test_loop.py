"""The training loop end to end on the real CPU simulator, resume, and data parallelism."""

import functools
import json
import os

import jax
import numpy as np
import pytest

from configs import film_evi
from rl2vla_jax import mesh as mesh_lib
from rl2vla_jax.policy import loading, records
from rl2vla_jax.policy.episodes import Rollout
from rl2vla_jax.train import builders, episode_plan, hparams, loop
from rl2vla_jax.train import update as update_lib
from rl2vla_jax.validation import ConfigError


def _tiny_run_config(iterations: int, **changes):
    config = film_evi.get_config()
    config.train.iterations = iterations
    config.env.max_episode_steps = 4
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = 4, 2
    config.env.image_size = 64
    config.train.eval_every, config.train.eval_episodes, config.train.video_every = 3, 2, 2
    for key, value in changes.items():
        section, name = key.split(".")
        config[section][name] = value
    return config


@pytest.mark.sim
@pytest.mark.slow
def test_train_end_to_end_then_resume_replays_identical_metrics(tmp_path):
    # Uninterrupted: 3 iterations.
    full = loop.train(
        _tiny_run_config(3, **{"train.eval_settings": ("image_noise_strong",)}), str(tmp_path / "full")
    )
    assert full["compiles"] == {"policy_step": 1, "update": 1}
    workdir = tmp_path / "resumed"
    # Interrupted after 2 iterations, then the same command again with the same workdir.
    loop.train(_tiny_run_config(2), str(workdir))
    resumed = loop.train(_tiny_run_config(3), str(workdir))
    assert [row["iteration"] for row in resumed["rows"]] == [0, 1, 2]  # earlier rows kept from summary.csv
    deterministic = ("return", "policy_loss", "value_loss", "approx_kl", "grad_norm", "policy_entropy")
    for key in deterministic:
        assert resumed["rows"][2][key] == full["rows"][2][key], key  # bit for bit on CPU
    for a, b in zip(jax.tree.leaves(resumed["state"].trainable), jax.tree.leaves(full["state"].trainable)):
        np.testing.assert_array_equal(a, b)
    # What a run leaves behind: checkpoints (params / train_state / assets), events, summary.
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2", "3"]
    assert {"params", "train_state", "assets"} <= set(os.listdir(workdir / "checkpoints" / "3"))
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir / "tensorboard"))
    assert "eval_success" in resumed["rows"][2] and "eval_success" not in full["rows"][1]
    assert sorted(os.listdir(tmp_path / "full" / "videos")) == [
        "eval_image_noise_strong_00002.mp4",
        "iteration_00000.mp4",
        "iteration_00002.mp4",
    ]
    # the OOD setting is evaluated beside the ID one, at the same iterations
    assert {"eval_image_noise_strong_success", "eval_image_noise_strong_return"} <= set(full["rows"][2])
    assert "eval_image_noise_strong_success" not in full["rows"][1]
    # per-sample records every iteration (train.diagnostics_every = 1 on the CPU default)
    names = sorted(os.listdir(workdir / "records"))
    assert names == ["iteration_00000.npz", "iteration_00001.npz", "iteration_00002.npz"]
    columns = records.read_records(str(workdir / "records"))
    assert len(columns["value"]) == 3 * 4 * 2 and columns["entropies"].shape == (24, 7)  # iterations x T x B
    assert sorted(set(columns["iteration"])) == [0, 1, 2] and set(columns["setting"]) == {"train"}
    np.testing.assert_allclose(columns["descriptor"], columns["entropies"][:, 0], rtol=1e-6)  # tokens="first"
    summary = (workdir / "summary.md").read_text()
    assert "| iter | return | success | succ_once | value_loss | entropy |" in summary


def _random_rollout(key, model_cfg, horizon=4, num_envs=4, prompt_len=11):
    keys = jax.random.split(key, 8)
    size = model_cfg.image_size
    return Rollout(
        images=jax.random.randint(keys[0], (horizon, num_envs, size, size, 3), 0, 256).astype(np.uint8),
        prompt_ids=jax.random.randint(keys[1], (horizon, num_envs, prompt_len), 3, 300),
        prompt_mask=np.broadcast_to(np.arange(prompt_len) < 8, (horizon, num_envs, prompt_len)),
        tokens=jax.random.randint(keys[2], (horizon, num_envs, 7), 0, 256),
        token_log_probs=jax.random.normal(keys[3], (horizon, num_envs, 7)) - 38.0 / 7,
        values=jax.random.normal(keys[4], (horizon, num_envs)),
        rewards=jax.random.normal(keys[5], (horizon, num_envs)),
        dones=(jax.random.uniform(keys[6], (horizon, num_envs)) < 0.2).astype(np.float32),
        bootstrap_value=jax.random.normal(keys[7], (num_envs,)),
        group_ids=np.arange(num_envs) // 2,
        valid=np.ones((horizon, num_envs), np.float32),
    )


@pytest.mark.slow
def test_two_devices_give_the_same_losses_as_one():
    assert jax.device_count() >= 2, "conftest forces 2 CPU devices"
    config = film_evi.get_config()
    config.env.num_envs, config.env.max_episode_steps = 4, 4
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = 4, 2
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
    critic = builders.make_critic(hp, config)
    actor_tx, critic_tx = builders.optimizers(config)
    rollouts = [_random_rollout(jax.random.PRNGKey(i), model_cfg) for i in range(2)]

    def run(devices):
        mesh = mesh_lib.make_mesh(data=len(devices), fsdp=1, devices=devices)
        state = builders.initial_state(config, hp, model_cfg, critic)
        sharding = mesh_lib.param_sharding(mesh, state)
        learn = jax.jit(
            functools.partial(update_lib.update, hp, model_cfg, critic, actor_tx, critic_tx, 10.0),
            out_shardings=(sharding, mesh_lib.replicated(mesh)),
        )
        state = jax.device_put(state, sharding)
        history = []
        for rollout in rollouts:
            batch = jax.device_put(rollout, mesh_lib.env_axis_sharding(mesh, rollout))
            assert len(batch.rewards.sharding.device_set) == len(devices)
            state, metrics = learn(state, batch)
            history.append(jax.device_get(metrics))
        return history, jax.device_get(state.trainable)

    one_history, one_params = run(jax.devices()[:1])
    two_history, two_params = run(jax.devices()[:2])
    for one, two in zip(one_history, two_history):
        for key in ("policy_loss", "value_loss", "grad_norm", "approx_kl"):
            np.testing.assert_allclose(one[key], two[key], rtol=2e-5, atol=1e-6, err_msg=key)
    for key in one_params:
        np.testing.assert_allclose(one_params[key], two_params[key], rtol=1e-4, atol=1e-6, err_msg=key)


def test_eval_settings_are_checked_against_the_suite():
    config = _tiny_run_config(1, **{"train.eval_settings": ("unseen_table", "unseen_tabel")})
    with pytest.raises(ConfigError, match="unseen_tabel"):
        loop._eval_settings(config)
    config.train.eval_settings = ("unseen_table", "image_noise_strong")
    assert loop._eval_settings(config) == ["unseen_table", "image_noise_strong"]


def _by_seed_and_step(columns):
    order = np.lexsort((columns["step"], columns["seed"]))
    return {key: columns[key][order] for key in ("seed", "step", "entropies", "reward", "success")}


@pytest.mark.sim
@pytest.mark.slow
def test_episodes_per_env_plays_the_next_iterations_episodes_into_one_update(tmp_path):
    # With the policy frozen (actor lr 0), one iteration of 2 episodes per env plays exactly the
    # episodes (seeds, sampling keys, hence actions and rewards) of two 1-episode iterations.
    frozen = {"optim.actor_lr": 0.0, "train.eval_every": 0, "train.video_every": 0}
    twice = _tiny_run_config(1, **frozen, **{"rollout.episodes_per_env": 2, "ppo.grad_accum_steps": 4})
    once = _tiny_run_config(2, **frozen)
    assert episode_plan.episode_seeds(twice, 0, 2, 1) == episode_plan.episode_seeds(once, 1, 2)
    loop.train(twice, str(tmp_path / "twice"))
    loop.train(once, str(tmp_path / "once"))
    both = records.read_records(str(tmp_path / "twice" / "records"))
    assert len(both["value"]) == 4 * 2 * 2 and set(both["iteration"]) == {0}  # T x B x episodes per env
    assert len(set(both["seed"])) == 4 and set(both["env"]) == {0, 1, 2, 3}
    expected, got = (
        _by_seed_and_step(records.read_records(str(tmp_path / "once" / "records"))),
        _by_seed_and_step(both),
    )
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    run = json.loads((tmp_path / "twice" / loop.RUN_FILE).read_text())
    assert run["env_steps_per_iteration"] == 2 * 2 * 4


def test_episodes_per_env_is_checked():
    config = _tiny_run_config(1, **{"rollout.episodes_per_env": 0})
    with pytest.raises(ConfigError, match="rollout.episodes_per_env=0 must be >= 1"):
        hparams.rl_hparams(config)
    config = _tiny_run_config(1, **{"rollout.episodes_per_env": 3})  # 2 envs x 3 x 4 steps = 24 samples
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = 5, 1
    with pytest.raises(
        ConfigError, match="env.num_envs\\*rollout.episodes_per_env\\*env.max_episode_steps=24"
    ):
        hparams.rl_hparams(config)
