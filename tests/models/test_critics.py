import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rl2vla_jax.models import critics

HIDDEN, SIZES = 29, (17, 11)


def _inputs(seed=0, batch=13):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return jax.random.normal(k1, (batch, HIDDEN)), jax.random.uniform(k2, (batch,))


def test_film_evi_equals_value_head_at_init():
    hidden, descriptor = _inputs()
    film = critics.FiLMEVICritic(SIZES, film_hidden_size=7)
    film_params = film.init(jax.random.PRNGKey(1), hidden, descriptor)
    head = critics.ValueHead(SIZES)
    # the same trunk params: the FiLM critic's value head drives the plain head
    head_params = {"params": film_params["params"]["value_head"]}
    np.testing.assert_array_equal(
        film.apply(film_params, hidden, descriptor), head.apply(head_params, hidden)
    )
    # and the descriptor does not matter yet (identity modulation)
    np.testing.assert_array_equal(
        film.apply(film_params, hidden, descriptor), film.apply(film_params, hidden, 1.0 - descriptor)
    )


def test_film_params_get_nonzero_gradients_after_one_step():
    hidden, descriptor = _inputs(1)
    targets = jax.random.normal(jax.random.PRNGKey(9), (13,))
    film = critics.FiLMEVICritic(SIZES, film_hidden_size=7)
    params = film.init(jax.random.PRNGKey(2), hidden, descriptor)

    def loss(p):
        return jnp.mean((film.apply(p, hidden, descriptor) - targets) ** 2)

    optimizer = optax.sgd(0.1)
    grads = jax.grad(loss)(params)
    params = optax.apply_updates(params, optimizer.update(grads, optimizer.init(params))[0])
    grads = jax.grad(loss)(params)
    for name in ("film_hidden", "film_out"):
        for leaf in jax.tree.leaves(grads["params"][name]):
            assert float(jnp.abs(leaf).max()) > 0.0, name
    # after the step the descriptor changes the value: the critic is entropy-conditioned
    assert not np.allclose(
        film.apply(params, hidden, descriptor), film.apply(params, hidden, 1.0 - descriptor)
    )


def test_value_head_shapes_values_and_exact_gelu():
    hidden, descriptor = _inputs(2)
    head = critics.ValueHead(SIZES)
    params = head.init(jax.random.PRNGKey(3), hidden)
    p = params["params"]
    x = np.asarray(hidden, np.float64)
    from scipy.special import erf

    def gelu(v):
        return 0.5 * v * (1 + erf(v / np.sqrt(2)))

    for name in ("dense_0", "dense_1"):
        x = gelu(x @ np.asarray(p[name]["kernel"]) + np.asarray(p[name]["bias"]))
    expected = (x @ np.asarray(p["out"]["kernel"]) + np.asarray(p["out"]["bias"]))[:, 0]
    np.testing.assert_allclose(head.apply(params, hidden), expected, rtol=1e-5, atol=1e-6)
    assert p["dense_0"]["kernel"].shape == (HIDDEN, 17) and p["dense_1"]["kernel"].shape == (17, 11)


def test_entropy_concat_depends_on_descriptor():
    hidden, descriptor = _inputs(3)
    critic = critics.make_critic("entropy_concat", SIZES)
    params = critic.init(jax.random.PRNGKey(4), hidden, descriptor)
    assert params["params"]["value_head"]["dense_0"]["kernel"].shape == (HIDDEN + 1, 17)
    assert not np.allclose(
        critic.apply(params, hidden, descriptor), critic.apply(params, hidden, descriptor + 1.0)
    )


def test_make_critic_rejects_unknown_names():
    with pytest.raises(ValueError, match="valid critics: entropy_concat, film_evi, value_head"):
        critics.make_critic("q_function", SIZES)


def test_critic_jit_traces_once():
    hidden, descriptor = _inputs(4)
    critic = critics.make_critic("film_evi", SIZES, 7)
    params = critic.init(jax.random.PRNGKey(5), hidden, descriptor)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(p, h, u):
        return critic.apply(p, h, u)

    for _ in range(3):
        got = f(params, hidden, descriptor)
    np.testing.assert_allclose(got, critic.apply(params, hidden, descriptor), rtol=1e-6)


def test_rl4vla_head_has_no_last_bias_and_upstreams_init_statistics():
    """RL4VLA's ValueHead: hidden kernels N(0, 2/fan_out) (Kaiming fan_out), zero biases, the
    last layer bias-free with a N(0, 0.02) kernel. Wide layers so the sample std is tight."""
    hidden = jax.random.normal(jax.random.PRNGKey(4), (3, 211))
    for name in ("value_head", "film_evi", "entropy_concat"):
        critic = critics.make_critic(name, (509, 127), 7, rl4vla_head=True)
        params = critic.init(jax.random.PRNGKey(5), hidden, jnp.ones((3,)))["params"]
        head = params["value_head"]
        assert set(head["out"]) == {"kernel"} and head["out"]["kernel"].shape == (127, 1)
        for layer, fan_out in (("dense_0", 509), ("dense_1", 127)):
            kernel = np.asarray(head[layer]["kernel"])
            np.testing.assert_allclose(kernel.std(), np.sqrt(2.0 / fan_out), rtol=0.03)
            assert np.abs(kernel).max() > 2.5 * np.sqrt(2.0 / fan_out)  # untruncated, as torch's normal_
            np.testing.assert_array_equal(head[layer]["bias"], 0.0)
    ours = critics.make_critic("value_head", (509, 127)).init(jax.random.PRNGKey(5), hidden)["params"]
    assert set(ours["value_head"]["out"]) == {"kernel", "bias"}
