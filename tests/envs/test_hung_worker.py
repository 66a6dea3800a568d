"""A simulator worker that hangs in a step is killed and restarted after `step_timeout_s`; its
episode is marked, dropped from the means and counted; the other envs and the next episode go on."""

import time
import types

import jax
import numpy as np
import pytest

from configs import film_evi
from rl2vla_jax.envs import vector_env
from rl2vla_jax.policy import episodes as episodes_lib
from rl2vla_jax.policy import records as records_lib
from rl2vla_jax.policy.episodes import Episodes
from rl2vla_jax.train import hparams, loop
from tests.envs import fake_worker


def test_a_hung_worker_is_restarted_and_its_episode_marked(monkeypatch):
    monkeypatch.setattr(vector_env, "worker_main", fake_worker.worker_main)  # spawned by reference
    env = vector_env.CpuVectorEnv("fake", 3, fake_worker.SIZE, 5, seed=11, step_timeout_s=0.5)
    try:
        env.reset()
        pids = env.worker_pids
        actions = np.random.default_rng(0).normal(size=(3, 7)).astype(np.float32)
        _, reward, terminated, _, info = env.step(actions)
        np.testing.assert_array_equal(reward, actions[:, 1])
        hang = actions.copy()
        hang[1, 0] = fake_worker.HANG
        started = time.monotonic()
        obs, reward, terminated, _, info = env.step(hang)
        assert time.monotonic() - started < 30  # the timeout, one restart, not the hour of sleep
        np.testing.assert_array_equal(terminated, [False, True, False])
        np.testing.assert_array_equal(info["worker_crashed"], [False, True, False])
        np.testing.assert_array_equal(info["success"], [True, False, True])
        np.testing.assert_array_equal(reward, [hang[0, 1], 0.0, hang[2, 1]])
        assert obs.images[1].max() == 1 and obs.images[0].min() == 2  # env 1 keeps its last frame
        assert (env.restarts, env.hangs) == (1, 1)
        assert env.worker_pids[0] == pids[0] and env.worker_pids[1] != pids[1]
        # The restarted worker serves the next episode.
        obs = env.reset(seed=[5, 6, 7])
        assert obs.instructions == ["task 5", "task 6", "task 7"]
        _, _, terminated, _, info = env.step(actions)
        assert not terminated.any() and not info["worker_crashed"].any()
    finally:
        env.close()


def test_dropped_episodes_leave_the_means_and_are_counted():
    rng = np.random.default_rng(3)
    returns = rng.normal(size=5)
    success = np.array([True, False, True, True, False])
    dropped = np.array([False, False, True, False, True])
    episodes = Episodes(
        success=success,
        success_once=success,
        returns=returns,
        episode_length=np.array([13, 13, 4, 13, 9]),
        prompt_ids=np.zeros((5, 3), np.int32),
        prompt_mask=np.ones((5, 3), bool),
        steps=None,
        bootstrap_value=None,
        frames=[],
        seconds={},
        dropped=dropped,
    )
    stats = episodes.stats()
    assert stats["episodes_dropped"] == 2.0
    assert stats["return"] == float(returns[[0, 1, 3]].mean())
    assert stats["success"] == 2 / 3 and stats["episode_length"] == 13.0
    episodes.dropped = np.ones(5, bool)
    assert episodes.stats()["success"] == 0.0 and episodes.stats()["episodes_dropped"] == 5.0


def _scripted_actor(monkeypatch, env, hang_step=1, hang_env=1):
    """An Actor on `env` (3 stand-in workers) whose env `hang_env` hangs at step `hang_step`;
    entropy 1, 100, 3 per env (env 1's would dominate any mean it entered)."""
    monkeypatch.setattr(
        episodes_lib,
        "encode_prompts",
        lambda tokenizer, texts, length, vocab_size: (
            np.zeros((len(texts), length), np.int32),
            np.ones((len(texts), length), bool),
        ),
    )
    entropy = np.array([1.0, 100.0, 3.0], np.float32)

    def act(policy_params, critic_params, images, prompt_ids, prompt_mask, rng, temperature):
        token_log_probs = np.full((3, 7), -0.5, np.float32)
        return {
            "tokens": np.zeros((3, 7), np.int32),
            "token_log_probs": token_log_probs,
            "log_prob": token_log_probs.sum(-1),
            "value": np.zeros(3, np.float32),
            "entropy": entropy,
            "entropies": np.repeat(entropy[:, None], 7, axis=1),
            "descriptor": entropy,
        }

    calls = []

    def decoder(tokens):
        actions = np.full((3, 7), 0.25, np.float32)
        if len(calls) == hang_step:
            actions[hang_env, 0] = fake_worker.HANG
        calls.append(1)
        return actions

    return episodes_lib.Actor(env, act, None, decoder, fake_worker.SIZE, 5, 448)


def test_a_hung_episode_is_invalid_in_the_rollout(monkeypatch, tmp_path):
    # run_episodes on the stand-in worker with a scripted actor: env 1 hangs at step 1 (of 4).
    # Its whole episode, the steps before the hang included, is marked invalid for the update,
    # and the rollout means leave it out.
    monkeypatch.setattr(vector_env, "worker_main", fake_worker.worker_main)
    env = vector_env.CpuVectorEnv("fake", 3, fake_worker.SIZE, 4, seed=11, step_timeout_s=0.5)
    try:
        actor = _scripted_actor(monkeypatch, env)
        episodes = episodes_lib.run_episodes(
            actor, None, None, [1, 2, 3], jax.random.PRNGKey(0), 1.0, record=True
        )
    finally:
        env.close()
    np.testing.assert_array_equal(episodes.dropped, [False, True, False])
    rollout = episodes_lib.to_rollout(episodes, [0, 1, 2])
    np.testing.assert_array_equal(rollout.valid, np.array([[1.0, 0.0, 1.0]] * 4, np.float32))
    np.testing.assert_array_equal(rollout.dones[:, 1], [0.0, 1.0, 1.0, 1.0])  # what the env reports
    assert rollout.token_log_probs.shape == (4, 3, 7)
    np.testing.assert_allclose(rollout.log_probs, np.full((4, 3), -3.5))
    stats = episodes.stats()
    assert stats["episodes_dropped"] == 1.0 and stats["policy_entropy"] == 2.0
    assert stats["return"] == 4 * 0.25  # the fake env's reward is action[1]
    # the run's records (critic diagnostics) keep only the two scored episodes' rows
    config = film_evi.get_config()
    config.env.num_envs = 3
    loop._write_records(str(tmp_path), config, hparams.rl_hparams(config), episodes, 0, [1, 2, 3])
    columns = records_lib.read_records(str(tmp_path / records_lib.RECORDS_FOLDER))
    np.testing.assert_array_equal(columns["env"], [0, 2] * 4)
    np.testing.assert_array_equal(columns["step"], np.repeat(np.arange(4), 2))


def test_evaluation_counts_a_hung_episode_apart(monkeypatch, tmp_path):
    # The evaluation runner on the stand-in: env 2 hangs in the only batch. Its episode is not
    # scored (not a failure): its seed is listed as crashed, and the summary says so.
    from rl2vla_jax.envs.suites import SuiteEntry
    from rl2vla_jax.evaluation import report, runner

    monkeypatch.setattr(vector_env, "worker_main", fake_worker.worker_main)
    config = types.SimpleNamespace(seed=0)
    options = runner.Options("random", "ours", (0,), 3, 0.6, 4, fake_worker.SIZE, "far", "wide")
    setting = SuiteEntry("ours", "train", "fake", "train", "ID", {}, "")
    runner.prepare_folder(str(tmp_path), options)
    env = vector_env.CpuVectorEnv("fake", 3, fake_worker.SIZE, 4, seed=11, step_timeout_s=0.5)
    try:
        actor = _scripted_actor(monkeypatch, env, hang_step=2, hang_env=2)
        result = runner.run_setting(config, actor, None, setting, options, str(tmp_path), 0)
    finally:
        env.close()
    seed = result["seeds"]["0"]
    first = runner.episode_seed(0, 0)
    assert seed["episode_seed"] == [first, first + 1] and seed["crashed_seeds"] == [first + 2]
    assert seed["success"] == [1.0, 1.0]  # the fake env succeeds from step 2: the hung one is not a 0
    text = report.write_report(str(tmp_path), {"train": result}, "random")
    rows = {row["name"]: row for row in report.summary_rows({"train": result})}
    assert (rows["train"]["episodes"], rows["train"]["crashed"], rows["train"]["success"]) == (2, 1, 1.0)
    assert "1 episode(s) crashed or hung in the simulator (worker restarted)" in text and "(train: 1)" in text
    assert report.per_seed_rows({"train": result})[0]["crashed"] == 1


def test_groups_step_apart_and_a_hang_stays_in_its_group(monkeypatch):
    # step_send / step_receive on groups of the stand-in workers: each group's answer holds its
    # own rows, each env counts its own steps, and a hang marks only its env.
    monkeypatch.setattr(vector_env, "worker_main", fake_worker.worker_main)
    env = vector_env.CpuVectorEnv("fake", 5, fake_worker.SIZE, 2, seed=11, step_timeout_s=0.5)
    try:
        env.reset()
        actions = np.random.default_rng(7).normal(size=(5, 7)).astype(np.float32)
        first, second = np.array([3, 0, 4]), np.array([1, 2])
        env.step_send(first, actions[first])
        with pytest.raises(RuntimeError, match="in flight"):
            env.step_send([4], actions[[4]])
        with pytest.raises(RuntimeError, match="no step in flight"):
            env.step_receive(second)
        env.step_send(second, actions[second])
        obs, reward, terminated, truncated, info = env.step_receive(second)
        np.testing.assert_array_equal(reward, actions[second, 1])
        assert obs.images.shape == (2, fake_worker.SIZE, fake_worker.SIZE, 3) and obs.images.max() == 1
        assert not truncated.any() and not terminated.any()
        env.step_send(second, actions[second])  # group 2 runs ahead: its second and last step
        hang = actions[first].copy()
        hang[1, 0] = fake_worker.HANG  # env 0, in the middle of the first group
        _, reward, terminated, truncated, info = env.step_receive(second)
        assert truncated.all() and info["success"].all() and env.elapsed_steps == 2
        _, reward, terminated, truncated, info = env.step_receive(first)
        np.testing.assert_array_equal(reward, actions[first, 1])
        assert not truncated.any() and not info["success"].any()
        env.step_send(first, hang)
        obs, reward, terminated, truncated, info = env.step_receive(first)
        np.testing.assert_array_equal(terminated, [False, True, False])
        np.testing.assert_array_equal(info["worker_crashed"], [False, True, False])
        np.testing.assert_array_equal(info["success"], [True, False, True])
        np.testing.assert_array_equal(reward, [hang[0, 1], 0.0, hang[2, 1]])
        assert truncated.all() and obs.images[1].max() == 1 and obs.images[0].min() == 2
        assert (env.restarts, env.hangs) == (1, 1)
        env.step_send(second, actions[second])  # left in flight: the reset reads and drops it
        obs = env.reset(seed=[5, 6, 7, 8, 9])
        assert obs.instructions == [f"task {s}" for s in range(5, 10)] and obs.images.max() == 0
        _, _, terminated, truncated, _ = env.step(actions)
        assert not terminated.any() and not truncated.any() and env.elapsed_steps == 1
    finally:
        env.close()
