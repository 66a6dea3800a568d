import chex
import jax
import jax.numpy as jnp
import numpy as np
import rlax

from rl2vla_jax.rl import advantages


def _random_rollout(key, steps=80, envs=64):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    rewards = jax.random.normal(k1, (steps, envs))
    values = jax.random.normal(k2, (steps, envs))
    dones = (jax.random.uniform(k3, (steps, envs)) < 0.05).astype(jnp.float32)
    bootstrap = jax.random.normal(k4, (envs,))
    return rewards, values, dones, bootstrap


def test_gae_hand_case_with_termination_inside_horizon():
    # T=3, one env; the episode terminates at t=1 so t=1 does not bootstrap from V_2.
    rewards = jnp.array([[1.0], [2.0], [3.0]])
    values = jnp.array([[0.5], [1.0], [1.5]])
    dones = jnp.array([[0.0], [1.0], [0.0]])
    bootstrap = jnp.array([2.0])
    gamma, lam = 0.9, 0.8
    d2 = 3.0 + 0.9 * 2.0 - 1.5  # 3.3
    d1 = 2.0 - 1.0  # 1.0, terminated: no V_2
    d0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    a2, a1 = d2, d1
    a0 = d0 + gamma * lam * a1
    adv, ret = advantages.gae_advantages(rewards, values, dones, bootstrap, gamma, lam)
    np.testing.assert_allclose(adv[:, 0], [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], [a0 + 0.5, a1 + 1.0, a2 + 1.5], rtol=1e-6)


def test_gae_matches_rlax_on_random_rollouts():
    for seed in range(3):
        rewards, values, dones, bootstrap = _random_rollout(jax.random.PRNGKey(seed))
        assert 0 < float(dones.sum()) < dones.size  # terminations inside the horizon
        gamma, lam = 0.99, 0.95
        adv, ret = advantages.gae_advantages(rewards, values, dones, bootstrap, gamma, lam)
        discounts = gamma * (1.0 - dones)
        values_tp1 = jnp.concatenate([values, bootstrap[None]], axis=0)
        expected = jax.vmap(
            rlax.truncated_generalized_advantage_estimation, in_axes=(1, 1, None, 1), out_axes=1
        )(rewards, discounts, lam, values_tp1)
        np.testing.assert_allclose(adv, expected, atol=1e-6, rtol=0)
        np.testing.assert_allclose(ret, expected + values, atol=1e-6, rtol=0)


def test_gae_jit_matches_eager_and_traces_once():
    rewards, values, dones, bootstrap = _random_rollout(jax.random.PRNGKey(7), 17, 11)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(r, v, d, b):
        return advantages.gae_advantages(r, v, d, b, 0.99, 0.95)

    for _ in range(3):
        jitted = f(rewards, values, dones, bootstrap)
    eager = advantages.gae_advantages(rewards, values, dones, bootstrap, 0.99, 0.95)
    chex.assert_trees_all_close(jitted, eager, atol=1e-6)


def test_reward_to_go_undiscounted_resets_at_done():
    rewards = jnp.array([[1.0, 0.0], [2.0, 1.0], [3.0, 1.0]])
    dones = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(advantages.reward_to_go(rewards, dones), [[3.0, 2.0], [2.0, 2.0], [3.0, 1.0]])


def test_grpo_advantages_hand_case_and_per_group_standardisation():
    returns = jnp.array([1.0, 3.0, 10.0, 10.0, 0.0, 4.0])
    groups = jnp.array([0, 0, 1, 1, 2, 2])
    got = advantages.grpo_advantages(returns, groups)
    # group 0: mean 2, std 1; group 1: identical -> 0; group 2: mean 2, std 2
    np.testing.assert_allclose(got, [-1.0, 1.0, 0.0, 0.0, -1.0, 1.0], atol=1e-5)
    # time-major: each step standardised within the group at that step
    returns_tb = jax.random.normal(jax.random.PRNGKey(0), (5, 6))
    got_tb = advantages.grpo_advantages(returns_tb, groups)
    for t in range(5):
        np.testing.assert_allclose(got_tb[t], advantages.grpo_advantages(returns_tb[t], groups), atol=1e-6)
        for g in range(3):
            np.testing.assert_allclose(np.asarray(got_tb[t])[np.asarray(groups) == g].mean(), 0.0, atol=1e-5)


def test_normalize_zero_mean_unit_std_and_mask():
    adv = jax.random.normal(jax.random.PRNGKey(5), (17, 11)) * 4.0 + 3.0
    out = advantages.normalize(adv)
    np.testing.assert_allclose(float(out.mean()), 0.0, atol=1e-5)
    np.testing.assert_allclose(float(out.std()), 1.0, atol=1e-4)
    mask = jnp.arange(17 * 11).reshape(17, 11) % 3 != 0
    masked = advantages.normalize(adv, mask)
    sel = np.asarray(masked)[np.asarray(mask)]
    np.testing.assert_allclose([sel.mean(), sel.std()], [0.0, 1.0], atol=1e-4)
    assert float(jnp.abs(jnp.where(mask, 0.0, masked)).max()) == 0.0


def test_buffer_reward_advantages_hand_case_all_and_nonzero_rewards():
    """RL4VLA's GRPO: standardise per-step rewards over the buffer, then undiscounted reward-to-go."""
    rewards = jnp.array([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])  # [T=3, B=2]
    dones = jnp.zeros_like(rewards)
    # All six rewards: mean 1, population std sqrt(4/3); r~ col0 [-1, 1, -1]/s, col1 [0, -1, 2]/s.
    s = np.sqrt(4.0 / 3.0) + 1e-5
    got = advantages.buffer_reward_advantages(rewards, dones, nonzero_only=False)
    np.testing.assert_allclose(got, np.array([[-1.0, 1.0], [0.0, 1.0], [-1.0, 2.0]]) / s, rtol=1e-6)
    # Non-zero only (--alg_grpo_fix): {1, 2, 3} -> mean 2, std sqrt(2/3); zeros stay 0.
    s = np.sqrt(2.0 / 3.0) + 1e-5
    got = advantages.buffer_reward_advantages(rewards, dones, nonzero_only=True)
    np.testing.assert_allclose(got, np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 1.0]]) / s, atol=1e-6)
    # A done at t=0 in env 1 stops the sum there; no reward at all gives zeros, not NaN.
    got = advantages.buffer_reward_advantages(rewards, dones.at[0, 1].set(1.0), nonzero_only=True)
    np.testing.assert_allclose(got[0, 1], -1.0 / s, rtol=1e-6)
    zeros = advantages.buffer_reward_advantages(jnp.zeros((3, 2)), dones, nonzero_only=True)
    np.testing.assert_array_equal(zeros, np.zeros((3, 2)))


def test_buffer_reward_advantages_match_rl4vla_recursion_on_random_rewards():
    """Against an independent numpy statement of RL4VLA's compute_returns_grpo equations."""
    rng = np.random.default_rng(11)
    rewards = rng.choice([0.0, 0.0, 0.1, -0.1, 1.0], size=(17, 11)).astype(np.float32)
    masks = (rng.uniform(size=(17, 11)) > 0.1).astype(np.float32)  # 1 - done
    for nonzero_only in (False, True):
        keep = rewards != 0 if nonzero_only else np.ones_like(rewards, bool)
        norm = rewards.copy()
        norm[keep] = (rewards[keep] - rewards[keep].mean()) / (rewards[keep].std() + 1e-5)
        expected, running = np.zeros_like(rewards), np.zeros(11, np.float32)
        for t in reversed(range(17)):
            running = norm[t] + masks[t] * running
            expected[t] = running
        got = advantages.buffer_reward_advantages(jnp.asarray(rewards), jnp.asarray(1 - masks), nonzero_only)
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_gae_never_bootstraps_into_or_across_invalid_samples():
    # T=3, two envs. Env 0: valid at t=0 only (a per-sample mask; the trainer masks whole
    # episodes): t=0 must not bootstrap from V_1, which belongs to an invalid sample.
    # Env 1: all valid, identical to the unmasked GAE.
    rewards = jnp.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    values = jnp.array([[0.5, 0.5], [1.0, 1.0], [1.5, 1.5]])
    dones = jnp.zeros((3, 2))
    bootstrap = jnp.array([2.0, 2.0])
    valid = jnp.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    adv, ret = advantages.gae_advantages(rewards, values, dones, bootstrap, 0.9, 0.8, valid)
    unmasked, _ = advantages.gae_advantages(rewards, values, dones, bootstrap, 0.9, 0.8)
    np.testing.assert_allclose(adv[:, 0], [1.0 - 0.5, 0.0, 0.0], rtol=1e-6)  # r_0 - V_0, nothing after
    np.testing.assert_allclose(ret[0, 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(adv[:, 1], unmasked[:, 1], rtol=1e-6)
    d2, d1, d0 = 3.0 + 0.9 * 2.0 - 1.5, 2.0 + 0.9 * 1.5 - 1.0, 1.0 + 0.9 * 1.0 - 0.5
    np.testing.assert_allclose(
        unmasked[0, 0], d0 + 0.72 * (d1 + 0.72 * d2), rtol=1e-6
    )  # what masking removes
    # an invalid sample in the middle: t=2 is unaffected, t=0 stops at the gap
    valid = jnp.array([[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    adv, _ = advantages.gae_advantages(rewards, values, dones, bootstrap, 0.9, 0.8, valid)
    np.testing.assert_allclose(adv[:, 0], [0.5, 0.0, d2], rtol=1e-6)


def test_grpo_advantages_leave_invalid_members_out():
    returns = jnp.array([[1.0, 3.0, 100.0, 10.0, 0.0, 4.0]])
    groups = jnp.array([0, 0, 0, 1, 1, 1])
    valid = jnp.array([[1.0, 1.0, 0.0, 0.0, 1.0, 1.0]])
    got = advantages.grpo_advantages(returns, groups, valid=valid)
    # group 0 without the 100: mean 2, std 1; group 1 without the 10: mean 2, std 2
    np.testing.assert_allclose(got[0], [-1.0, 1.0, 0.0, 0.0, -1.0, 1.0], atol=1e-5)
    unmasked = advantages.grpo_advantages(returns, groups)
    assert abs(float(unmasked[0, 0]) + 1.0) > 0.2  # the invalid member would have moved it


def test_buffer_reward_advantages_leave_invalid_rewards_out():
    rewards = jnp.array([[0.0, 1.0, 50.0], [2.0, 0.0, 50.0], [0.0, 3.0, 50.0]])
    dones = jnp.zeros((3, 3))
    valid = jnp.array([[1.0, 1.0, 0.0]] * 3)
    got = advantages.buffer_reward_advantages(rewards, dones, True, valid=valid)
    expected = advantages.buffer_reward_advantages(rewards[:, :2], dones[:, :2], True)
    np.testing.assert_allclose(got[:, :2], expected, rtol=1e-5)
    np.testing.assert_allclose(got[:, 2], 0.0)
