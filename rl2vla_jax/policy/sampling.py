"""The batched OpenVLA policy step: sample 7 action tokens, or score given ones.

Both functions take right-padded prompts (`rl2vla_jax.data.prompt.encode_prompts`): row b's
real tokens are prompt_ids[b, :n_b] with n_b = prompt_mask[b].sum(), starting with BOS. In
the model's sequence, prompt token i >= 1 sits at index i + P (P image patches), so the last
prompt token of row b is at q_b = n_b - 1 + P; its hidden state predicts the first action
token and is what the critic reads. Action tokens are BIN indices k in 0..255 (vocab id =
action_token_begin + k); all distributions are the softmax renormalised over those 256 ids.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from rl2vla_jax.models.config import OpenVLAConfig
from rl2vla_jax.models.openvla import OpenVLA
from rl2vla_jax.rl.entropy import token_entropy, token_log_probs

Params = Any


def _apply(params, model_config, *args, method):
    return OpenVLA(model_config).apply({"params": params}, *args, method=method)


def _last_prompt_index(model_config: OpenVLAConfig, prompt_mask: jax.Array) -> jax.Array:
    lengths = jnp.sum(prompt_mask.astype(jnp.int32), axis=-1)
    return lengths - 1 + model_config.num_patches


def _empty_cache(model_config: OpenVLAConfig, batch: int, slots: int) -> dict[str, jax.Array]:
    llm = model_config.llm
    shape = (llm.num_layers, batch, slots, llm.num_kv_heads, llm.head_dim)
    dtype = jnp.dtype(model_config.compute_dtype)
    return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}


def _per_row(rng: jax.Array) -> bool:
    """Whether `rng` holds one key per batch row ([B] typed keys, or raw uint32 [B, 2]) rather
    than one key for the whole batch (decided by its static shape: no recompile per call)."""
    typed = jnp.issubdtype(rng.dtype, jax.dtypes.prng_key)
    return rng.ndim == (1 if typed else 2)


def _choose(logits: jax.Array, rng: jax.Array, temperature: jax.Array) -> jax.Array:
    """Sample from softmax(logits / T); argmax at T = 0 (one compiled program for both).
    Per-row keys draw each row on its own, so a row's draw never depends on the batch it is in."""
    safe_t = jnp.where(temperature > 0, temperature, 1.0)
    if _per_row(rng):
        sampled = jax.vmap(lambda key, row: jax.random.categorical(key, row / safe_t))(rng, logits)
    else:
        sampled = jax.random.categorical(rng, logits / safe_t, axis=-1)
    return jnp.where(temperature > 0, sampled, jnp.argmax(logits, axis=-1)).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("model_config",))
def _sample_actions(params, model_config, pixel_values, prompt_ids, prompt_mask, rng, temperature):
    cfg = model_config
    batch, prompt_len = prompt_ids.shape
    num_tokens = cfg.action_dim
    temperature = jnp.asarray(temperature, jnp.float32)
    # Slots: the prompt, the patches, and the first 6 action tokens (the 7th is never fed back).
    cache = _empty_cache(cfg, batch, prompt_len + cfg.num_patches + num_tokens - 1)
    hidden_seq, cache = _apply(params, cfg, pixel_values, prompt_ids, cache, method=OpenVLA.hidden_states)
    last = _last_prompt_index(cfg, prompt_mask)
    hidden = jnp.take_along_axis(hidden_seq, last[:, None, None], axis=1)[:, 0]
    first_logits = _apply(params, cfg, hidden, method=OpenVLA.action_logits)

    def decode_step(carry, step_rng):
        cache, logits, position = carry
        bin_index = _choose(logits, step_rng, temperature)
        token_id = (bin_index + cfg.action_token_begin)[:, None]
        step_hidden, cache = _apply(
            params, cfg, token_id, position[:, None], cache, method=OpenVLA.decode_tokens
        )
        next_logits = _apply(params, cfg, step_hidden[:, 0], method=OpenVLA.action_logits)
        return (cache, next_logits, position + 1), (bin_index, logits)

    if _per_row(rng):  # [B] keys -> [7, B]: token j of row b drawn with split(key_b)[j]
        rngs = jnp.swapaxes(jax.vmap(lambda key: jax.random.split(key, num_tokens))(rng), 0, 1)
    else:
        rngs = jax.random.split(rng, num_tokens)
    (_, last_logits, _), (bins, logits) = jax.lax.scan(
        decode_step, (cache, first_logits, last + 1), rngs[:-1]
    )
    tokens = jnp.concatenate([bins.T, _choose(last_logits, rngs[-1], temperature)[:, None]], axis=1)
    logits = jnp.concatenate([jnp.swapaxes(logits, 0, 1), last_logits[:, None]], axis=1)
    return {
        "tokens": tokens,
        "token_ids": tokens + cfg.action_token_begin,
        "log_probs": token_log_probs(logits, tokens, temperature),
        "entropies": token_entropy(logits),
        "hidden": hidden,
        "logits": logits,
    }


def sample_actions(
    params: Params,
    model_config: OpenVLAConfig,
    pixel_values: jax.Array,
    prompt_ids: jax.Array,
    prompt_mask: jax.Array,
    rng: jax.Array,
    temperature: float | jax.Array,
) -> dict[str, jax.Array]:
    """One prefill + KV-cached decoding of `action_dim` (7) tokens restricted to the action ids.

    Args: pixel_values [B, S, S, 6] float, prompt_ids [B, L] int32 right-padded, prompt_mask
    [B, L] bool, temperature a scalar (0 = greedy; traced, so no recompile when it changes).
    rng: one key shared by the batch, or one key per row ([B] typed keys or raw uint32 [B, 2]):
    then row b's tokens depend only on its inputs and its key, whatever else is in the batch
    (how `run_episodes` makes a pipelined rollout draw what the sequential one draws).
    Returns dict:
      tokens    [B, 7] int32 bin indices 0..255;   token_ids [B, 7] int32 vocab ids;
      log_probs [B, 7] log softmax(logits / T)[token] (T = 0 scored at T = 1);
      entropies [B, 7] H(softmax(logits)) / ln 256 at temperature 1;
      hidden    [B, D] final-normed last-layer state at the last prompt position;
      logits    [B, 7, 256] float32 raw action-bin logits (temperature 1).
    Decoding feeds back tokens 1..6 only: 1 prefill + 6 cached steps give all 7 distributions.
    """
    return _sample_actions(params, model_config, pixel_values, prompt_ids, prompt_mask, rng, temperature)


def teacher_forced_hidden(
    params: Params,
    model_config: OpenVLAConfig,
    pixel_values: jax.Array,
    prompt_ids: jax.Array,
    prompt_mask: jax.Array,
    target_ids: jax.Array,
) -> jax.Array:
    """One differentiable forward with `target_ids` [B, K] (vocab ids) placed right after each
    row's prompt. Returns the final-normed hidden states [B, K, D] at sequence indices q_b + j,
    the positions whose logits predict target j (so [:, 0] is the state at the last prompt
    token, what the critic reads)."""
    cfg = model_config
    lengths = jnp.sum(prompt_mask.astype(jnp.int32), axis=-1)
    target_ids = target_ids.astype(jnp.int32)
    padded = jnp.concatenate([prompt_ids.astype(jnp.int32), jnp.zeros_like(target_ids)], axis=1)
    ids = jax.vmap(lambda row, new, n: jax.lax.dynamic_update_slice(row, new, (n,)))(
        padded, target_ids, lengths
    )
    hidden_seq, _ = _apply(params, cfg, pixel_values, ids, None, method=OpenVLA.hidden_states)
    positions = _last_prompt_index(cfg, prompt_mask)[:, None] + jnp.arange(target_ids.shape[1])
    return jnp.take_along_axis(hidden_seq, positions[:, :, None], axis=1)


def action_logits_and_hidden(
    params: Params,
    model_config: OpenVLAConfig,
    pixel_values: jax.Array,
    prompt_ids: jax.Array,
    prompt_mask: jax.Array,
    action_tokens: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Teacher-forced scoring of given actions (bin indices [B, 7]), one differentiable forward.
    Returns (logits [B, 7, 256] float32 over the action bins, hidden [B, D] at the last prompt
    position q_b)."""
    action_ids = action_tokens.astype(jnp.int32) + model_config.action_token_begin
    hidden = teacher_forced_hidden(params, model_config, pixel_values, prompt_ids, prompt_mask, action_ids)
    logits = _apply(params, model_config, hidden, method=OpenVLA.action_logits)
    return logits, hidden[:, 0]
