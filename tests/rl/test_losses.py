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
