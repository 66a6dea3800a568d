"""The CPU vector env: worker processes behind the trainer's interface, crash recovery."""

import os
import signal

import numpy as np
import pytest

from rl2vla_jax.envs import make_vector_env

NUM_ENVS = 2


@pytest.fixture(scope="module")
def vector_env():
    env = make_vector_env("train", num_envs=NUM_ENVS, backend="cpu", image_size=48, max_episode_steps=6)
    yield env
    env.close()


@pytest.mark.sim
def test_reset_and_step_shapes(vector_env):
    obs = vector_env.reset(seed=11)
    assert obs.images.shape == (NUM_ENVS, 48, 48, 3) and obs.images.dtype == np.uint8
    assert len(obs.instructions) == NUM_ENVS and all(obs.instructions)
    assert vector_env.instructions == obs.instructions
    actions = np.random.default_rng(0).uniform(-0.05, 0.05, size=(NUM_ENVS, 7)).astype(np.float32)
    for step in range(6):
        obs, reward, terminated, truncated, info = vector_env.step(actions)
        assert reward.shape == (NUM_ENVS,) and reward.dtype == np.float32
        assert terminated.dtype == bool and not terminated.any()
        assert truncated.all() == (step == 5)
        assert info["success"].shape == (NUM_ENVS,) and info["success_once"].shape == (NUM_ENVS,)


@pytest.mark.sim
def test_same_seed_same_first_frame(vector_env):
    first = vector_env.reset(seed=21)
    second = vector_env.reset(seed=21)
    np.testing.assert_array_equal(first.images, second.images)
    assert first.instructions == second.instructions
    other = vector_env.reset(seed=22)
    # env i is seeded with seed + i, so shifting the seed by one shifts the envs by one
    np.testing.assert_array_equal(other.images[0], first.images[1])


@pytest.mark.sim
def test_killed_worker_is_restarted_and_its_episode_fails(vector_env):
    vector_env.reset(seed=31)
    hold = np.zeros((NUM_ENVS, 7), np.float32)
    hold[:, 6] = 1.0
    vector_env.step(hold)
    os.kill(vector_env.worker_pids[1], signal.SIGKILL)
    _, reward, terminated, _, info = vector_env.step(hold)
    assert terminated.tolist() == [False, True]
    assert info["worker_crashed"].tolist() == [False, True]
    assert not info["success"][1] and not info["success_once"][1] and reward[1] == 0
    _, _, terminated, _, _ = vector_env.step(hold)  # stays failed until the next reset
    assert terminated.tolist() == [False, True]
    obs = vector_env.reset(seed=31)
    assert obs.images.shape[0] == NUM_ENVS
    _, _, terminated, _, info = vector_env.step(hold)
    assert not terminated.any() and not info["worker_crashed"].any()


@pytest.mark.sim
def test_accepts_jax_actions(vector_env):
    import jax.numpy as jnp

    vector_env.reset(seed=41)
    obs, reward, _, _, _ = vector_env.step(jnp.zeros((NUM_ENVS, 7), jnp.float32).at[:, 6].set(1.0))
    assert obs.images.shape[0] == NUM_ENVS and reward.shape == (NUM_ENVS,)


def _episode_frames(env, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = [env.reset(seed=[seed]).images[0]]
    for _ in range(env.max_episode_steps):
        actions = rng.uniform(-1, 1, (1, 7)).astype(np.float32) * np.float32([0.1] * 3 + [0.3] * 3 + [1])
        frames.append(env.step(actions)[0].images[0])
    return np.stack(frames)


@pytest.mark.sim
def test_an_episode_does_not_depend_on_the_workers_history():
    # A resumed run starts new workers: their first episode must equal what long-running
    # workers produce for the same seed and actions, frame for frame.
    def run(seeds):
        env = make_vector_env("train", num_envs=1, backend="cpu", image_size=224, max_episode_steps=2)
        try:
            return [_episode_frames(env, seed) for seed in seeds]
        finally:
            env.close()

    after_history = run([5, 7])[1]
    fresh = run([7])[0]
    np.testing.assert_array_equal(fresh, after_history)


def _episode(env, actions):
    """First frame, then every step's frame and reward, of one episode from seed 41."""
    obs = env.reset(seed=41)
    frames, rewards = [obs.images], []
    for _ in range(3):
        obs, reward, terminated, _, _ = env.step(actions)
        assert not terminated.any()
        frames.append(obs.images)
        rewards.append(reward)
    return np.stack(frames), np.stack(rewards), list(obs.instructions)


@pytest.mark.sim
def test_switched_workers_play_another_setting_as_fresh_workers_do():
    actions = np.random.default_rng(1).uniform(-0.05, 0.05, size=(2, 7)).astype(np.float32)
    make = lambda setting, **kw: make_vector_env(
        setting, 2, backend="cpu", image_size=48, max_episode_steps=3, **kw
    )  # noqa: E731
    env = make("train")
    train_frames, _, _ = _episode(env, actions)
    os.kill(env.worker_pids[0], signal.SIGKILL)  # dead before the switch: restarted once by it
    env.workers[0].process.join(timeout=10)
    pids = env.worker_pids
    switched = make("unseen_table", reuse=env)
    assert switched is env and switched.restarts == 1
    assert switched.worker_pids[1] == pids[1]  # the live worker keeps its process
    pids = switched.worker_pids
    got = _episode(switched, actions)
    os.kill(pids[1], signal.SIGKILL)  # a worker restarted after the switch builds the new setting
    after_restart = _episode(switched, actions)
    assert switched.worker_pids[1] != pids[1]
    other = make_vector_env(
        "unseen_table", 2, backend="cpu", image_size=32, max_episode_steps=3, reuse=switched
    )
    assert other is not switched and all(p not in other.worker_pids for p in switched.worker_pids)
    other.close()
    fresh = make("unseen_table")
    want = _episode(fresh, actions)
    fresh.close()
    assert not np.array_equal(train_frames, want[0])  # the two settings look different
    for episode in (got, after_restart):
        np.testing.assert_array_equal(episode[0], want[0])
        np.testing.assert_array_equal(episode[1], want[1])
        assert episode[2] == want[2]
