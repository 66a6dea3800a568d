"""PPO losses on whole-action log-probs (summed over the action's tokens)."""

import jax
import jax.numpy as jnp


def _weighted_mean(x: jax.Array, weights: jax.Array | None) -> jax.Array:
    return jnp.mean(x) if weights is None else jnp.mean(weights * x)


def ppo_policy_loss(
    log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, clip_eps: float
) -> jax.Array:
    """Clipped surrogate to MINIMISE (Schulman et al. 2017):

    rho = exp(log pi(a|s) - log pi_old(a|s))
    L   = -mean( min(rho * A, clip(rho, 1 - eps, 1 + eps) * A) )
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -jnp.mean(jnp.minimum(unclipped, clipped))


def ppo_policy_stats(log_prob: jax.Array, old_log_prob: jax.Array, clip_eps: float) -> dict[str, jax.Array]:
    """Diagnostics: approx KL E[(rho - 1) - log rho] (Schulman's k3) and the clipped fraction."""
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    return {
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
        "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
    }


def huber(x: jax.Array, delta: float | None) -> jax.Array:
    """0.5 x^2 for |x| <= delta, delta (|x| - delta / 2) beyond; delta=None gives 0.5 x^2 (MSE)."""
    if delta is None:
        return 0.5 * jnp.square(x)
    abs_x = jnp.abs(x)
    return jnp.where(abs_x <= delta, 0.5 * jnp.square(x), delta * (abs_x - 0.5 * delta))


def value_loss(
    values: jax.Array,
    old_values: jax.Array,
    returns: jax.Array,
    clip_eps: float | None,
    huber_delta: float | None,
    weights: jax.Array | None = None,
) -> jax.Array:
    """Clipped value loss (RL4VLA / PPO2):

        V_clip = V_old + clip(V - V_old, -eps, eps)
        L      = mean( w * max(huber(R - V), huber(R - V_clip)) )

    `clip_eps=None` disables clipping; `huber_delta=None` uses 0.5 x^2; `weights` (e.g.
    `entropy_value_weights`) scale each sample, w = 1 by default.
    """
    values = values.astype(jnp.float32)
    loss = huber(returns - values, huber_delta)
    if clip_eps is not None:
        clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
        loss = jnp.maximum(loss, huber(returns - clipped, huber_delta))
    return _weighted_mean(loss, weights)


def entropy_value_weights(descriptor: jax.Array, coef: float) -> jax.Array:
    """Per-sample value-loss weights w = 1 + c * H of the entropy-weighted ablation (no gradient)."""
    return 1.0 + coef * jax.lax.stop_gradient(descriptor)


def explained_variance(values: jax.Array, returns: jax.Array) -> jax.Array:
    """1 - Var[R - V] / Var[R]: 1 is a perfect critic, 0 no better than a constant."""
    return 1.0 - jnp.var(returns - values) / (jnp.var(returns) + 1e-8)
