"""Token-level action distributions: entropy, the EVI descriptor and action log-probs.

All functions take `action_logits` already restricted to the 256 action bins, shape
[..., num_tokens, 256] (or [..., 256] for the per-token functions); action tokens are BIN
indices in 0..255, i.e. positions inside that 256-slice of the vocabulary.
"""

import math

import jax
import jax.numpy as jnp

NUM_ACTION_BINS = 256


def token_entropy(action_logits: jax.Array) -> jax.Array:
    """Per-token entropy over the action bins, normalised to [0, 1].

    H_k = -sum_i p_ki log p_ki / ln(256),  p_k = softmax(logits_k) over the 256 bins.
    Shape [..., 256] -> [...].
    """
    logits = action_logits.astype(jnp.float32)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    entropy = -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)
    return entropy / math.log(action_logits.shape[-1])


def entropy_descriptor(
    token_entropies: jax.Array, mode: str = "mean", detach: bool = True, tokens: str = "all"
) -> jax.Array:
    """Aggregate the per-token entropies of one action into the EVI descriptor u.

    u = mean_k H_k (mode="mean") or sum_k H_k (mode="sum") over the last axis (the tokens).
    tokens="first" keeps H_1 only (u = H_1 in either mode): token k > 1 is predicted after
    tokens 1..k-1 were sampled, so H_2..H_7 depend on the action and would make V(s; u) partly
    a Q-function; H_1 depends on the state alone.
    With `detach` the critic's loss sends no gradient back into the policy logits.
    """
    if tokens == "first":
        token_entropies = token_entropies[..., :1]
    elif tokens != "all":
        raise ValueError(f"entropy descriptor tokens {tokens!r} is not one of 'all', 'first'")
    if mode == "mean":
        descriptor = jnp.mean(token_entropies, axis=-1)
    elif mode == "sum":
        descriptor = jnp.sum(token_entropies, axis=-1)
    else:
        raise ValueError(f"entropy descriptor mode {mode!r} is not one of 'mean', 'sum'")
    return jax.lax.stop_gradient(descriptor) if detach else descriptor


def token_log_probs(action_logits: jax.Array, tokens: jax.Array, temperature: float = 1.0) -> jax.Array:
    """Per-token log-probs log softmax(logits_k / T)[token_k] over the action bins.

    Shapes: logits [..., K, 256], tokens [..., K] (bin indices) -> [..., K].
    Temperature 0 (greedy sampling) is scored at T = 1: a greedy choice has no density.
    """
    temperature = jnp.where(jnp.asarray(temperature) > 0, temperature, 1.0)
    log_p = jax.nn.log_softmax(action_logits.astype(jnp.float32) / temperature, axis=-1)
    return jnp.take_along_axis(log_p, tokens[..., None].astype(jnp.int32), axis=-1)[..., 0]


def action_log_prob(action_logits: jax.Array, tokens: jax.Array, temperature: float = 1.0) -> jax.Array:
    """Log-prob of a whole action: log pi(a) = sum_k log softmax(logits_k / T)[a_k].

    The SUM over the action's tokens (no per-token 7x replication), at the same temperature
    the action was sampled with. Shapes: [..., K, 256], [..., K] -> [...].
    """
    return jnp.sum(token_log_probs(action_logits, tokens, temperature), axis=-1)
