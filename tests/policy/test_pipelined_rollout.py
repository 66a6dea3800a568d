"""Pipelined rollouts (`run_episodes` with pipeline_groups > 1): the policy acts for one group of
envs while the simulator steps the others, and every per-env result equals the sequential
rollout's with the same seeds and rng."""

import dataclasses

import jax
import numpy as np
import pytest

from rl2vla_jax.envs import vector_env
from rl2vla_jax.policy import episodes as episodes_lib
from tests.envs import fake_worker

SEEDS = [5, 6, 7, 8]


# What the policy network computes (floats): XLA's CPU matmul picks its blocking, hence its
# summation order, from the matrix sizes, so a row acted for in a batch of 2 differs from the
# same row in a batch of 4 by float32 rounding (measured: <= 4e-6 on a 7-token log-prob sum).
NETWORK_FLOATS = ("token_log_probs", "values", "entropy", "entropies", "descriptor")


def _assert_same_episodes(pipelined, sequential, network_atol=0.0):
    """Every per-env result equal; the network's floats within `network_atol`."""
    for key in ("success", "success_once", "returns", "episode_length", "dropped"):
        np.testing.assert_array_equal(getattr(pipelined, key), getattr(sequential, key), err_msg=key)
    np.testing.assert_array_equal(pipelined.prompt_ids, sequential.prompt_ids)
    assert pipelined.steps.keys() == sequential.steps.keys()
    for key, value in sequential.steps.items():
        if key in NETWORK_FLOATS:
            np.testing.assert_allclose(pipelined.steps[key], value, rtol=0, atol=network_atol, err_msg=key)
        else:  # tokens, the simulator's rewards and dones, the images: bit for bit
            np.testing.assert_array_equal(pipelined.steps[key], value, err_msg=key)
    np.testing.assert_allclose(
        pipelined.bootstrap_value, sequential.bootstrap_value, rtol=0, atol=network_atol
    )
    assert len(pipelined.frames) == len(sequential.frames)
    for ours, theirs in zip(pipelined.frames, sequential.frames):
        np.testing.assert_array_equal(np.stack(ours), np.stack(theirs))


def _scripted_actor(monkeypatch, env, in_flight_when_acting):
    """An Actor whose tokens come from its per-env keys and whose values read the images, on
    the stand-in workers (reward = action[1], images = the step count)."""
    monkeypatch.setattr(
        episodes_lib,
        "encode_prompts",
        lambda tokenizer, texts, length, vocab_size: (
            np.arange(len(texts) * length, dtype=np.int32).reshape(len(texts), length),
            np.ones((len(texts), length), bool),
        ),
    )

    def act(policy_params, critic_params, images, prompt_ids, prompt_mask, rng, temperature):
        in_flight_when_acting.append(env._in_flight.copy())
        tokens = np.asarray(jax.vmap(lambda key: jax.random.randint(key, (7,), 0, 256))(rng), np.int32)
        value = images.reshape(len(images), -1).mean(-1).astype(np.float32) + prompt_ids[:, 0]
        entropy = tokens.mean(-1).astype(np.float32)
        return {
            "tokens": tokens,
            "token_log_probs": -tokens.astype(np.float32),
            "value": value,
            "entropy": entropy,
            "entropies": tokens.astype(np.float32) / 256,
            "descriptor": entropy,
        }

    decoder = lambda tokens: (np.asarray(tokens, np.float32) / 256).astype(np.float32)
    return episodes_lib.Actor(env, act, None, decoder, fake_worker.SIZE, 3, 448)


def test_pipelined_equals_sequential_and_overlaps_the_groups(monkeypatch):
    monkeypatch.setattr(vector_env, "worker_main", fake_worker.worker_main)
    env = vector_env.CpuVectorEnv("fake", 4, fake_worker.SIZE, 3, seed=11)
    in_flight = []
    try:
        actor = _scripted_actor(monkeypatch, env, in_flight)
        run = lambda groups: episodes_lib.run_episodes(
            dataclasses.replace(actor, pipeline_groups=groups),
            None,
            None,
            SEEDS,
            jax.random.PRNGKey(3),
            1.0,
            record=True,
            keep_videos=3,
        )
        sequential = run(1)
        assert len(in_flight) == 4 and not np.any(in_flight)  # 3 steps + bootstrap, all idle
        in_flight.clear()
        pipelined = run(2)
    finally:
        env.close()
    _assert_same_episodes(pipelined, sequential)
    # Not a trivial rollout: envs and steps drew different tokens, and rewards follow them.
    tokens = sequential.steps["tokens"]
    assert len({tokens[t, i].tobytes() for t in range(3) for i in range(4)}) == 12
    np.testing.assert_allclose(sequential.returns, (tokens[:, :, 1] / 256).sum(0), rtol=1e-6)
    # The overlap: while the policy acts for one group, the other group's step is in flight
    # (except for group 0 at step 0, nothing sent yet, and group 1's bootstrap, all received).
    idle, first, second = [False] * 4, [True, True, False, False], [False, False, True, True]
    expected = [idle, first] + [second, first] * 2 + [second, idle]
    np.testing.assert_array_equal(np.array(in_flight), np.array(expected))


def test_groups_must_divide_the_envs_and_need_a_cpu_env():
    with pytest.raises(ValueError, match="divide num_envs=6"):
        episodes_lib.env_groups(6, 4)
    assert [g.tolist() for g in episodes_lib.env_groups(6, 3)] == [[0, 1], [2, 3], [4, 5]]

    class OneBatchedSimulator:
        num_envs, max_episode_steps = 4, 2

        def step(self, actions):
            raise AssertionError("never reached")

    with pytest.raises(ValueError, match="OneBatchedSimulator steps all its envs at once"):
        episodes_lib._GroupStepper(OneBatchedSimulator(), episodes_lib.env_groups(4, 2))


@pytest.mark.sim
@pytest.mark.slow
def test_pipelined_equals_sequential_on_the_simulator():
    # The tiny model with a FiLM-EVI critic on 4 ManiSkill envs, 2 groups of 2: tokens, rewards,
    # dones, success and images equal the sequential rollout's bit for bit; log-probs, values
    # and entropies up to float32 rounding (NETWORK_FLOATS).
    from rl2vla_jax.data.prompt import load_tokenizer, tiny_tokenizer
    from rl2vla_jax.envs import make_vector_env
    from rl2vla_jax.envs.actions import FULL_RANGE_ACTION_STATS
    from rl2vla_jax.models import config as config_lib
    from rl2vla_jax.models import critics
    from rl2vla_jax.models.init import init_params
    from rl2vla_jax.policy.act import make_act
    from rl2vla_jax.policy.actions import ActionDecoder

    model_cfg = config_lib.tiny()
    critic = critics.make_critic("film_evi", (17, 11), 7)
    critic_params = critic.init(
        jax.random.PRNGKey(1),
        np.zeros((1, model_cfg.llm.hidden_size), np.float32),
        np.zeros((1,), np.float32),
    )["params"]
    params = init_params(model_cfg, jax.random.PRNGKey(0))
    env = make_vector_env("train", num_envs=4, backend="cpu", image_size=48, max_episode_steps=3)
    try:
        actor = episodes_lib.Actor(
            env,
            make_act(model_cfg, critic, "mean", "first"),
            load_tokenizer(tiny_tokenizer()),
            ActionDecoder(model_cfg, FULL_RANGE_ACTION_STATS),
            model_cfg.image_size,
            48,  # prompt tokens (the default config's)
            model_cfg.llm.vocab_size,
        )
        run = lambda groups: episodes_lib.run_episodes(
            dataclasses.replace(actor, pipeline_groups=groups),
            params,
            critic_params,
            SEEDS,
            jax.random.PRNGKey(3),
            1.0,
            record=True,
            keep_videos=4,
        )
        sequential, pipelined = run(1), run(2)
    finally:
        env.close()
    _assert_same_episodes(pipelined, sequential, network_atol=1e-5)
    tokens = sequential.steps["tokens"]
    assert len({tokens[t, i].tobytes() for t in range(3) for i in range(4)}) == 12
    assert not np.array_equal(sequential.frames[0][0], sequential.frames[0][-1])  # the arm moved
    assert np.unique(sequential.steps["values"]).size == 12
