import chex
import jax
import jax.numpy as jnp
import numpy as np
import rlax

from rl2vla_jax.rl import losses


def test_ppo_policy_loss_hand_case():
    # ratios 2.0 (A>0, clipped at 1.2), 0.5 (A>0, unclipped min), 0.5 (A<0, clipped at 0.8)
    log_prob = jnp.log(jnp.array([2.0, 0.5, 0.5]))
    old = jnp.zeros(3)
    adv = jnp.array([1.0, 2.0, -1.0])
    expected = -np.mean([1.2 * 1.0, 0.5 * 2.0, 0.8 * -1.0])
    np.testing.assert_allclose(losses.ppo_policy_loss(log_prob, old, adv, 0.2), expected, rtol=1e-6)


def test_ppo_policy_loss_matches_rlax_on_random_inputs():
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    shape = (80, 64)
    log_prob = jax.random.normal(k1, shape) * 0.3 - 5.0
    old = log_prob + jax.random.normal(k2, shape) * 0.3
    adv = jax.random.normal(k3, shape)
    ours = losses.ppo_policy_loss(log_prob, old, adv, 0.2)
    ratios = jnp.exp(log_prob - old).reshape(-1)
    theirs = rlax.clipped_surrogate_pg_loss(ratios, adv.reshape(-1), 0.2)
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
    stats = losses.ppo_policy_stats(log_prob, old, 0.2)
    assert 0.0 < float(stats["clip_fraction"]) < 1.0 and float(stats["approx_kl"]) > 0.0


def test_huber_and_mse():
    x = jnp.array([-12.0, -3.0, 0.5, 10.0, 25.0])
    np.testing.assert_allclose(losses.huber(x, 10.0), [70.0, 4.5, 0.125, 50.0, 200.0])
    np.testing.assert_allclose(losses.huber(x, None), 0.5 * np.square(np.asarray(x)))
    np.testing.assert_allclose(losses.huber(x, 10.0), rlax.huber_loss(x, 10.0), rtol=1e-6)


def test_value_loss_clipped_hand_case_and_weights():
    values = jnp.array([1.0, 0.0])
    old = jnp.array([0.0, 0.0])
    returns = jnp.array([0.5, 1.0])
    # sample 0: unclipped err -0.5 (0.125), clipped V=0.2 err 0.3 (0.045) -> max 0.125
    # sample 1: V=0 err 1.0 -> 0.5 both
    np.testing.assert_allclose(
        losses.value_loss(values, old, returns, 0.2, 10.0), (0.125 + 0.5) / 2, rtol=1e-6
    )
    values = jnp.array([-1.0, 0.0])
    # sample 0: unclipped err 1.5 (1.125), clipped V=-0.2 err 0.7 (0.245) -> 1.125
    np.testing.assert_allclose(
        losses.value_loss(values, old, returns, 0.2, 10.0), (1.125 + 0.5) / 2, rtol=1e-6
    )
    weights = losses.entropy_value_weights(jnp.array([0.5, 0.0]), 2.0)  # [2, 1]
    np.testing.assert_allclose(
        losses.value_loss(values, old, returns, 0.2, 10.0, weights), (2 * 1.125 + 0.5) / 2, rtol=1e-6
    )
    np.testing.assert_allclose(
        losses.value_loss(values, old, returns, None, None), (1.125 + 0.5) / 2, rtol=1e-6
    )


def test_losses_jit_traces_once():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(lp, olp, a, v, ov, r):
        return losses.ppo_policy_loss(lp, olp, a, 0.2) + losses.value_loss(v, ov, r, 0.2, 10.0)

    args = [jax.random.normal(jax.random.PRNGKey(i), (29,)) for i in range(6)]
    for _ in range(3):
        got = f(*args)
    np.testing.assert_allclose(
        got,
        losses.ppo_policy_loss(*args[:3], 0.2) + losses.value_loss(*args[3:], 0.2, 10.0),
        rtol=1e-6,
    )


def test_explained_variance():
    r = jax.random.normal(jax.random.PRNGKey(1), (101,))
    np.testing.assert_allclose(losses.explained_variance(r, r), 1.0, atol=1e-6)
    np.testing.assert_allclose(losses.explained_variance(jnp.full_like(r, r.mean()), r), 0.0, atol=1e-5)


def _token_case():
    """Two actions of K = 3 tokens, clip 0.2, old log-probs drawn fresh, new = old + log ratio.
    Sample 0 (A = 1): token ratios 1.5, 0.9, 1.0; the action's ratio 1.35.
    Sample 1 (A = -2): token ratios 0.5, 1.1, 1.3; the action's ratio 0.715."""
    ratios = np.array([[1.5, 0.9, 1.0], [0.5, 1.1, 1.3]])
    old = jax.random.normal(jax.random.PRNGKey(3), (2, 3)) - 5.0
    return old + jnp.log(ratios), old, jnp.array([1.0, -2.0]), ratios


def test_token_policy_loss_hand_case():
    new, old, adv, ratios = _token_case()
    # per token, min(r A, clip(r) A): sample 0: 1.2 (1.5 clipped), 0.9, 1.0 -> 3.1;
    # sample 1: -1.6 (0.5 clipped at 0.8), -2.2, -2.6 (1.3 unclipped: the min) -> -6.4
    token_sum = -np.mean([1.2 + 0.9 + 1.0, -1.6 - 2.2 - 2.6])  # 1.65
    np.testing.assert_allclose(
        losses.ppo_token_policy_loss(new, old, adv, 0.2, "token", "sum"), token_sum, rtol=1e-5
    )
    np.testing.assert_allclose(
        losses.ppo_token_policy_loss(new, old, adv, 0.2, "token", "mean"), token_sum / 3, rtol=1e-5
    )
    # Clipping the whole action instead: 1.35 -> 1.2 (A > 0), 0.715 -> 0.8 (A < 0, the min):
    # sample 0 gains 1.2 per column, not 3.1 / 3 (its 0.9 token is not clipped on its own).
    action = -np.mean([1.2 * 1.0, 0.8 * -2.0])  # 0.2
    np.testing.assert_allclose(
        losses.ppo_token_policy_loss(new, old, adv, 0.2, "action", "mean"), action, rtol=1e-5
    )
    np.testing.assert_allclose(
        losses.ppo_token_policy_loss(new, old, adv, 0.2, "action", "sum"), 3 * action, rtol=1e-5
    )  # RL4VLA: 7 (here 3) identical columns summed
    np.testing.assert_allclose(losses.ppo_policy_loss(new.sum(-1), old.sum(-1), adv, 0.2), action, rtol=1e-5)
    stats = losses.ppo_token_policy_stats(new, old, 0.2, "token")
    np.testing.assert_allclose(stats["clip_fraction"], np.mean([1 / 3, 2 / 3]), rtol=1e-6)  # 1.5 | 0.5, 1.3
    k3 = (ratios - 1.0) - np.log(ratios)
    np.testing.assert_allclose(stats["approx_kl"], k3.sum(-1).mean(), rtol=1e-4)
    action_stats = losses.ppo_token_policy_stats(new, old, 0.2, "action")
    np.testing.assert_allclose(action_stats["clip_fraction"], 1.0)  # 1.35 and 0.715
    r = ratios.prod(-1)
    np.testing.assert_allclose(action_stats["approx_kl"], np.mean((r - 1.0) - np.log(r)), rtol=1e-4)


def test_token_and_action_ratios_agree_with_one_token():
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(4), 3)
    new = jax.random.normal(k1, (23, 1)) * 0.3 - 5.0
    old = new + jax.random.normal(k2, (23, 1)) * 0.3
    adv = jax.random.normal(k3, (23,))
    expected = losses.ppo_policy_loss(new[:, 0], old[:, 0], adv, 0.2)
    for ratio in ("token", "action"):
        for reduction in ("sum", "mean"):
            got = losses.ppo_token_policy_loss(new, old, adv, 0.2, ratio, reduction)
            np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=f"{ratio} {reduction}")
        stats = losses.ppo_token_policy_stats(new, old, 0.2, ratio)
        for key, value in losses.ppo_policy_stats(new[:, 0], old[:, 0], 0.2).items():
            np.testing.assert_allclose(stats[key], value, rtol=1e-6, err_msg=f"{ratio} {key}")
    assert float(expected) != 0.0  # not a degenerate case


def test_zero_weights_are_samples_removed():
    new, old, adv, _ = _token_case()
    # a third sample, A = 5, every token ratio e^0.7 = 2.01 -> clipped: 3 x 1.2 x 5 = 18
    new = jnp.concatenate([new, old[:1] + 0.7])
    old, adv = jnp.concatenate([old, old[:1]]), jnp.array([1.0, -2.0, 5.0])
    np.testing.assert_allclose(
        losses.ppo_token_policy_loss(new, old, adv, 0.2, "token", "sum"), -(3.1 - 6.4 + 18.0) / 3, rtol=1e-5
    )
    weights = jnp.array([1.5, 1.5, 0.0])  # the third sample left out; 3 / 2 keeps a mean over the 2 kept
    got = losses.ppo_token_policy_loss(new, old, adv, 0.2, "token", "sum", weights)
    np.testing.assert_allclose(got, 1.65, rtol=1e-5)
    stats = losses.ppo_token_policy_stats(new, old, 0.2, "token", weights)
    np.testing.assert_allclose(stats["clip_fraction"], 0.5, rtol=1e-6)


def test_masked_explained_variance_ignores_masked_samples():
    k1, k2 = jax.random.split(jax.random.PRNGKey(5))
    returns, values = jax.random.normal(k1, (13, 7)), jax.random.normal(k2, (13, 7))
    mask = jnp.ones((13, 7)).at[:, 2].set(0.0)
    kept = np.delete(np.arange(7), 2)
    expected = losses.explained_variance(values[:, kept], returns[:, kept])
    garbage = values.at[:, 2].set(1e3)  # what a dropped column holds does not matter
    np.testing.assert_allclose(losses.explained_variance(garbage, returns, mask), expected, rtol=1e-5)
    assert abs(float(losses.explained_variance(garbage, returns)) - float(expected)) > 1.0
