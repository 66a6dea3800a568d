"""RL4VLA's behaviours one option away: no bootstrap at the time limit, its GRPO advantage,
and --use_same_init (one initial state for every env of an iteration)."""

import dataclasses
import types

import jax.numpy as jnp
import numpy as np
import pytest

from configs import film_evi, grpo
from rl2vla_jax.train import episode_plan, hparams
from rl2vla_jax.train import update as update_lib


def _rollout(rewards, values, dones, bootstrap, group_ids=None):
    rewards = jnp.asarray(rewards, jnp.float32)
    return types.SimpleNamespace(
        rewards=rewards,
        values=jnp.asarray(values, jnp.float32),
        dones=jnp.asarray(dones, jnp.float32),
        bootstrap_value=jnp.asarray(bootstrap, jnp.float32),
        group_ids=jnp.arange(rewards.shape[1]) if group_ids is None else jnp.asarray(group_ids),
        valid=jnp.ones_like(rewards),
    )


def test_bootstrap_truncation_default_and_paper():
    assert film_evi.get_config().ppo.bootstrap_truncation is True
    assert film_evi.get_config("paper").ppo.bootstrap_truncation is False


@pytest.mark.parametrize("bootstrap_truncation", [True, False])
def test_gae_at_the_time_limit_hand_case(bootstrap_truncation):
    config = film_evi.get_config()
    hp = dataclasses.replace(
        hparams.rl_hparams(config), gamma=0.9, gae_lambda=0.8, bootstrap_truncation=bootstrap_truncation
    )
    # T=2, two envs; env 1 terminates at t=0 (its t=0 advantage never sees t=1), so the time
    # limit changes env 0's both steps but only env 1's last one.
    rollout = _rollout([[1.0, 3.0], [2.0, -1.0]], [[0.5, 0.2], [1.0, 0.7]], [[0, 1], [0, 0]], [4.0, -2.0])
    adv, ret = update_lib.compute_advantages(hp, rollout)
    if bootstrap_truncation:
        d1 = np.array([2.0 + 0.9 * 4.0 - 1.0, -1.0 + 0.9 * -2.0 - 0.7])  # [4.6, -3.5]
    else:  # RL4VLA: mask = 0 at step 80, r - V only
        d1 = np.array([2.0 - 1.0, -1.0 - 0.7])  # [1.0, -1.7]
    d0 = np.array([1.0 + 0.9 * 1.0 - 0.5, 3.0 - 0.2])  # env 1 terminated: no V_1
    a0 = d0 + 0.9 * 0.8 * np.array([1.0, 0.0]) * d1
    np.testing.assert_allclose(adv, np.stack([a0, d1]), rtol=1e-6)
    np.testing.assert_allclose(ret, np.stack([a0, d1]) + np.array([[0.5, 0.2], [1.0, 0.7]]), rtol=1e-6)


def test_grpo_paper_is_rl4vla_and_default_is_group_standardised():
    ours, paper = grpo.get_config(), grpo.get_config("paper")
    assert (ours.grpo.advantage, ours.ppo.normalize_advantages) == ("group", True)
    assert (paper.grpo.advantage, paper.grpo.nonzero_rewards_only) == ("buffer_rewards", True)
    assert (paper.ppo.normalize_advantages, grpo.get_config("paper,same_state").grpo.same_init) == (
        False,
        "batch",
    )
    rewards = np.array([[0.0, 1.0, 0.0, 0.5], [2.0, 0.0, 0.0, 0.0], [0.0, 3.0, 1.0, 0.0]])
    rollout = _rollout(rewards, np.zeros_like(rewards), np.zeros_like(rewards), np.zeros(4), [0, 0, 1, 1])
    # Ours: reward-to-go [[2, 4, 1, .5], [2, 3, 1, 0], [0, 3, 1, 0]], standardised within {0,1}, {2,3}.
    adv, _ = update_lib.compute_advantages(hparams.rl_hparams(ours), rollout)
    np.testing.assert_allclose(adv[0], [-1.0, 1.0, 1.0, -1.0], atol=1e-5)
    np.testing.assert_allclose(adv[2], [-1.0, 1.0, 1.0, -1.0], atol=1e-5)
    # RL4VLA: non-zero rewards {1, .5, 2, 3, 1}: mean 1.5, std sqrt(0.8); reward-to-go of those.
    adv, ret = update_lib.compute_advantages(hparams.rl_hparams(paper), rollout)
    s = np.sqrt(0.8) + 1e-5
    norm = np.where(rewards != 0, (rewards - 1.5) / s, 0.0)
    expected = np.cumsum(norm[::-1], axis=0)[::-1]
    np.testing.assert_allclose(adv, expected, atol=1e-5)
    np.testing.assert_array_equal(adv, ret)
    all_rewards = dataclasses.replace(hparams.rl_hparams(paper), grpo_nonzero_rewards_only=False)
    adv, _ = update_lib.compute_advantages(all_rewards, rollout)
    norm = (rewards - rewards.mean()) / (rewards.std() + 1e-5)
    np.testing.assert_allclose(adv, np.cumsum(norm[::-1], axis=0)[::-1], atol=1e-5)


def test_same_init_whole_batch_and_per_group():
    per_group = grpo.get_config("same_state")
    per_group.env.num_envs, per_group.grpo_group_size = 6, 3
    seeds = episode_plan.episode_seeds(per_group, 5, 3)
    assert seeds[:3] == [seeds[0]] * 3 and seeds[3:] == [seeds[3]] * 3 and seeds[0] != seeds[3]
    batch = grpo.get_config("paper,same_state")
    assert batch.algorithm == "grpo_s" and batch.grpo.same_init == "batch"
    seeds = episode_plan.episode_seeds(batch, 5, 8)
    assert len(seeds) == 64 and set(seeds) == {seeds[0]}
    assert episode_plan.episode_seeds(batch, 6, 8)[0] != seeds[0]  # a new shared state every iteration
    plain = grpo.get_config("paper")  # GRPO without same_state: every env its own state
    assert len(set(episode_plan.episode_seeds(plain, 5, 8))) == 64


def test_ppo_ratio_default_paper_and_bad_value():
    ours, paper = film_evi.get_config(), film_evi.get_config("paper")
    assert (ours.ppo.ratio, ours.ppo.token_reduction) == ("action", "mean")
    # RL4VLA: the action's ratio in all 7 buffer columns, the surrogate summed over them
    assert (paper.ppo.ratio, paper.ppo.token_reduction) == ("action", "sum")
    ours.ppo.ratio = "tokens"
    with pytest.raises(
        hparams.ConfigError, match=r"config.ppo.ratio='tokens' is not valid; choose one of: action, token"
    ):
        hparams.rl_hparams(ours)
