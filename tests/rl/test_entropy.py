import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rl2vla_jax.rl import entropy


def test_token_entropy_hand_cases():
    uniform = jnp.zeros((256,))
    one_hot = jnp.full((256,), -1e9).at[17].set(0.0)
    two_way = jnp.full((256,), -1e9).at[3].set(0.0).at[200].set(0.0)
    got = entropy.token_entropy(jnp.stack([uniform, one_hot, two_way]))
    np.testing.assert_allclose(got, [1.0, 0.0, math.log(2) / math.log(256)], atol=1e-6)


def test_token_entropy_matches_numpy_on_random_logits():
    logits = jax.random.normal(jax.random.PRNGKey(3), (11, 7, 256)) * 3.0
    p = np.exp(np.asarray(logits, np.float64))
    p /= p.sum(-1, keepdims=True)
    expected = -(p * np.log(p)).sum(-1) / np.log(256)
    np.testing.assert_allclose(entropy.token_entropy(logits), expected, rtol=1e-5)


def test_descriptor_mean_sum_and_bad_mode():
    h = jnp.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]])
    np.testing.assert_allclose(entropy.entropy_descriptor(h, "mean"), [0.4], rtol=1e-6)
    np.testing.assert_allclose(entropy.entropy_descriptor(h, "sum"), [2.8], rtol=1e-6)
    with pytest.raises(ValueError, match="mean"):
        entropy.entropy_descriptor(h, "max")
    # tokens="first": u = H_1 whatever the mode; the other 6 entropies are ignored
    for mode in ("mean", "sum"):
        np.testing.assert_allclose(entropy.entropy_descriptor(h, mode, tokens="first"), [0.1], rtol=1e-6)
    with pytest.raises(ValueError, match="first"):
        entropy.entropy_descriptor(h, "mean", tokens="last")


def test_detached_descriptor_passes_no_gradient_to_logits():
    logits = jax.random.normal(jax.random.PRNGKey(0), (5, 7, 256))

    def through_descriptor(x, detach):
        return jnp.sum(entropy.entropy_descriptor(entropy.token_entropy(x), detach=detach) ** 2)

    assert float(jnp.abs(jax.grad(through_descriptor)(logits, True)).max()) == 0.0
    assert float(jnp.abs(jax.grad(through_descriptor)(logits, False)).max()) > 0.0


def test_action_log_prob_is_sum_of_token_log_probs_at_temperature():
    key_logits, key_tokens = jax.random.split(jax.random.PRNGKey(1))
    logits = jax.random.normal(key_logits, (13, 7, 256)) * 2.0
    tokens = jax.random.randint(key_tokens, (13, 7), 0, 256)
    for temperature in (1.0, 0.6):
        scaled = np.asarray(logits, np.float64) / temperature
        log_p = scaled - np.log(np.exp(scaled).sum(-1, keepdims=True))
        expected = np.take_along_axis(log_p, np.asarray(tokens)[..., None], -1)[..., 0].sum(-1)
        np.testing.assert_allclose(entropy.action_log_prob(logits, tokens, temperature), expected, rtol=1e-5)
    # A temperature-0 (greedy) action is scored at T = 1.
    np.testing.assert_allclose(
        entropy.action_log_prob(logits, tokens, 0.0), entropy.action_log_prob(logits, tokens, 1.0)
    )


def test_jit_matches_eager_and_traces_once():
    logits = jax.random.normal(jax.random.PRNGKey(2), (3, 7, 256))
    tokens = jax.random.randint(jax.random.PRNGKey(4), (3, 7), 0, 256)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(x, t):
        return entropy.action_log_prob(x, t, 0.6), entropy.token_entropy(x)

    for _ in range(3):
        got = f(logits, tokens)
    chex.assert_trees_all_close(
        got, (entropy.action_log_prob(logits, tokens, 0.6), entropy.token_entropy(logits)), rtol=1e-6
    )
