"""PPO losses: on whole-action log-probs (summed over the action's tokens), or per token.

`weights` [N] scale each sample's term of a mean (w = 1 by default): the update uses them to
leave out samples of dropped episodes (w = 0) and to keep the mean over the samples kept."""

import jax
import jax.numpy as jnp


def _weighted_mean(x: jax.Array, weights: jax.Array | None) -> jax.Array:
    return jnp.mean(x) if weights is None else jnp.mean(weights * x)


def _clipped_surrogate(log_ratio: jax.Array, advantages: jax.Array, clip_eps: float) -> jax.Array:
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return jnp.minimum(unclipped, clipped)


def ppo_policy_loss(
    log_prob: jax.Array,
    old_log_prob: jax.Array,
    advantages: jax.Array,
    clip_eps: float,
    weights: jax.Array | None = None,
) -> jax.Array:
    """Clipped surrogate to MINIMISE (Schulman et al. 2017):

    rho = exp(log pi(a|s) - log pi_old(a|s))
    L   = -mean( w * min(rho * A, clip(rho, 1 - eps, 1 + eps) * A) )
    """
    return -_weighted_mean(_clipped_surrogate(log_prob - old_log_prob, advantages, clip_eps), weights)


def ppo_policy_stats(
    log_prob: jax.Array, old_log_prob: jax.Array, clip_eps: float, weights: jax.Array | None = None
) -> dict[str, jax.Array]:
    """Diagnostics: approx KL E[(rho - 1) - log rho] (Schulman's k3) and the clipped fraction."""
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    return {
        "approx_kl": _weighted_mean((ratio - 1.0) - log_ratio, weights),
        "clip_fraction": _weighted_mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32), weights),
    }


def token_log_ratios(token_log_prob: jax.Array, old_token_log_prob: jax.Array, ratio: str) -> jax.Array:
    """[N, K] log-ratios of an action's K tokens. "token": each token's own,
    log pi(a_k | s, a_<k) - log pi_old(a_k | s, a_<k); "action": the whole action's,
    sum_j of those, in every one of the K columns (RL4VLA stores the action's summed log-prob
    broadcast to its 7 buffer columns: `replay_buffer.py` `action_log_probs`)."""
    log_ratio = token_log_prob - old_token_log_prob
    if ratio == "token":
        return log_ratio
    if ratio == "action":
        return jnp.broadcast_to(jnp.sum(log_ratio, axis=-1, keepdims=True), log_ratio.shape)
    raise ValueError(f"ratio={ratio!r}: use 'action' or 'token'")


def ppo_token_policy_loss(
    token_log_prob: jax.Array,
    old_token_log_prob: jax.Array,
    advantages: jax.Array,
    clip_eps: float,
    ratio: str,
    token_reduction: str,
    weights: jax.Array | None = None,
) -> jax.Array:
    """Clipped surrogate with one ratio per token column, to MINIMISE:

        rho_nk = exp(log-ratio of column k of sample n)        (`token_log_ratios`)
        L      = -mean_n( w_n * R_k min(rho_nk A_n, clip(rho_nk, 1 - eps, 1 + eps) A_n) )

    R_k is the sum over the K columns (`token_reduction="sum"`, RL4VLA's `train_ppo_step`:
    `.sum(dim=-1)` then a mean over the minibatch) or their mean. With `ratio="action"` every
    column holds the action's ratio, so "mean" is `ppo_policy_loss` and "sum" is K times it
    (RL4VLA's loss); with one token both ratios agree. [N, K], [N, K], [N] -> scalar.
    """
    surrogate = _clipped_surrogate(
        token_log_ratios(token_log_prob, old_token_log_prob, ratio), advantages[:, None], clip_eps
    )
    reduce = {"sum": jnp.sum, "mean": jnp.mean}[token_reduction]
    return -_weighted_mean(reduce(surrogate, axis=-1), weights)


def ppo_token_policy_stats(
    token_log_prob: jax.Array,
    old_token_log_prob: jax.Array,
    clip_eps: float,
    ratio: str,
    weights: jax.Array | None = None,
) -> dict[str, jax.Array]:
    """`ppo_policy_stats` for per-column ratios. approx_kl is the action's: per token k3 summed
    over the tokens (the chain rule; for `ratio="action"` the action's k3, as in
    `ppo_policy_stats`); clip_fraction is the fraction of (sample, token) ratios outside
    [1 - eps, 1 + eps]."""
    log_ratio = token_log_ratios(token_log_prob, old_token_log_prob, ratio)
    if ratio == "action":
        return ppo_policy_stats(
            jnp.sum(token_log_prob, -1), jnp.sum(old_token_log_prob, -1), clip_eps, weights
        )
    token_ratio = jnp.exp(log_ratio)
    clipped = (jnp.abs(token_ratio - 1.0) > clip_eps).astype(jnp.float32)
    return {
        "approx_kl": _weighted_mean(jnp.sum((token_ratio - 1.0) - log_ratio, axis=-1), weights),
        "clip_fraction": _weighted_mean(jnp.mean(clipped, axis=-1), weights),
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


def masked_variance(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Population variance of `x` where `mask` is 1 (0 when nothing is kept). jnp.var's own
    `where` keeps an all-ones mask bit-identical to jnp.var(x)."""
    keep = mask > 0
    return jnp.where(jnp.any(keep), jnp.var(x, where=keep), 0.0)


def explained_variance(values: jax.Array, returns: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """1 - Var[R - V] / Var[R]: 1 is a perfect critic, 0 no better than a constant (over the
    samples where `mask` is 1, when given)."""
    unmasked = 1.0 - jnp.var(returns - values) / (jnp.var(returns) + 1e-8)
    if mask is None:
        return unmasked
    masked = 1.0 - masked_variance(returns - values, mask) / (masked_variance(returns, mask) + 1e-8)
    # XLA fuses the masked form differently (last-bit changes): keep a healthy run's log as it was.
    return jnp.where(jnp.all(mask > 0), unmasked, masked)
