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
import numpy as np

from rl2vla_jax.models import lora as lora_lib
from rl2vla_jax.models.config import LoraConfig, OpenVLAConfig
from rl2vla_jax.models.openvla import OpenVLA
from rl2vla_jax.rl.entropy import token_entropy, token_log_probs

Params = Any


def param_shapes(model_config: OpenVLAConfig) -> Params:
    """The parameter tree as `jax.ShapeDtypeStruct`s: nothing is computed or allocated."""
    size = model_config.image_size
    pixel_values = jnp.zeros((1, size, size, 6), jnp.float32)
    ids = jnp.ones((1, 3), jnp.int32)
    return jax.eval_shape(lambda r: OpenVLA(model_config).init(r, pixel_values, ids)["params"], jax.random.key(0))


def init_params(model_config: OpenVLAConfig, rng: jax.Array) -> Params:
    """Randomly initialised parameters (base + LoRA factors when `model_config.lora` is set).

    The tree's structure comes from `jax.eval_shape(model.init)`; values are drawn on the host
    with numpy (compiling the threefry-based Flax initialisers costs ~30 s on a small CPU):
    kernels ~ N(0, 1/fan_in), embeddings/tokens/pos_embed ~ N(0, 0.02^2), lm_head ~ N(0, 1/d),
    norms 1, biases 0, LayerScale 1e-5, LoRA A ~ N(0, (1/r)^2), B = 0.
    """
    shapes = param_shapes(model_config)
    seed = int(jax.random.randint(rng, (), 0, 2**31 - 1))
    generator = np.random.default_rng(seed)
    rank = model_config.lora.rank if model_config.lora else 1

    def draw(path, leaf):
        names = [getattr(k, "key", str(k)) for k in path]
        name, shape = names[-1], leaf.shape
        if name == lora_lib.LORA_B or name == "bias":
            value = np.zeros(shape)
        elif name == lora_lib.LORA_A:
            value = generator.normal(0.0, 1.0 / rank, shape)
        elif name in ("weight", "scale") and names[-2].startswith("ls"):
            value = np.full(shape, 1e-5)
        elif name in ("weight", "scale"):
            value = np.ones(shape)
        elif name == "kernel" and names[-2] == "lm_head":
            # Unit-scale logits. At 0.02 a small model's logits are ~0.1 and, the final norm
            # bounding |h|, LoRA could never sharpen them: RL from scratch would stay uniform.
            value = generator.normal(0.0, shape[0] ** -0.5, shape)
        elif name == "kernel":
            fan_in = (
                int(np.prod(shape[-4:-1])) if len(shape) >= 4 and names[-2] == "patch_embed" else shape[-2]
            )
            value = generator.normal(0.0, fan_in**-0.5, shape)
        else:  # embeddings, cls/reg tokens, pos_embed
            value = generator.normal(0.0, 0.02, shape)
        return jnp.asarray(value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def add_lora(params: Params, model_config: OpenVLAConfig, lora: LoraConfig, rng: jax.Array):
    """Base params (e.g. from `load_checkpoint`) -> (params with fresh LoRA factors, config).

    A ~ N(0, (1/r)^2), B = 0, so the adapted model starts equal to the base model. Factors
    already present (an imported adapter) are kept.
    """
    cfg = model_config.replace(lora=lora)
    size = cfg.image_size
    shapes = jax.eval_shape(
        lambda r: OpenVLA(cfg).init(r, jnp.zeros((1, size, size, 6)), jnp.ones((1, 3), jnp.int32))["params"],
        rng,
    )
    generator = np.random.default_rng(int(jax.random.randint(rng, (), 0, 2**31 - 1)))

    def fill(path, leaf):
        node = params
        try:
            for key in path:
                node = node[key.key]
            return node
        except KeyError:
            name = path[-1].key
            if name == lora_lib.LORA_A:
                return jnp.asarray(generator.normal(0.0, 1.0 / lora.rank, leaf.shape), leaf.dtype)
            if name == lora_lib.LORA_B:
                return jnp.zeros(leaf.shape, leaf.dtype)
            raise

    return jax.tree_util.tree_map_with_path(fill, shapes), cfg


def trainable_mask(params: Params) -> Params:
    """True at LoRA factors only (the trainer adds its critic's parameters)."""
    return lora_lib.lora_mask(params)


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


def _choose(logits: jax.Array, rng: jax.Array, temperature: jax.Array) -> jax.Array:
    """Sample from softmax(logits / T); argmax at T = 0 (one compiled program for both)."""
    safe_t = jnp.where(temperature > 0, temperature, 1.0)
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
    Returns dict:
      tokens    [B, 7] int32 bin indices 0..255;   token_ids [B, 7] int32 vocab ids;
      log_probs [B, 7] log softmax(logits / T)[token] (T = 0 scored at T = 1);
      entropies [B, 7] H(softmax(logits)) / ln 256 at temperature 1;
      hidden    [B, D] final-normed last-layer state at the last prompt position;
      logits    [B, 7, 256] float32 raw action-bin logits (temperature 1).
    Decoding feeds back tokens 1..6 only: 1 prefill + 6 cached steps give all 7 distributions.
    """
    return _sample_actions(params, model_config, pixel_values, prompt_ids, prompt_mask, rng, temperature)


def action_logits_and_hidden(
    params: Params,
    model_config: OpenVLAConfig,
    pixel_values: jax.Array,
    prompt_ids: jax.Array,
    prompt_mask: jax.Array,
    action_tokens: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Teacher-forced scoring of given actions, one differentiable forward.

    The 7 action tokens (bin indices [B, 7]) are placed right after each row's prompt; the
    logits at sequence index q_b + j predict token j. Returns (logits [B, 7, 256] float32 over
    the action bins, hidden [B, D] at the last prompt position q_b).
    """
    cfg = model_config
    num_tokens = action_tokens.shape[-1]
    lengths = jnp.sum(prompt_mask.astype(jnp.int32), axis=-1)
    action_ids = action_tokens.astype(jnp.int32) + cfg.action_token_begin
    padded = jnp.concatenate([prompt_ids.astype(jnp.int32), jnp.zeros_like(action_ids)], axis=1)
    ids = jax.vmap(lambda row, acts, n: jax.lax.dynamic_update_slice(row, acts, (n,)))(
        padded, action_ids, lengths
    )
    hidden_seq, _ = _apply(params, cfg, pixel_values, ids, None, method=OpenVLA.hidden_states)
    positions = _last_prompt_index(cfg, prompt_mask)[:, None] + jnp.arange(num_tokens)
    hidden = jnp.take_along_axis(hidden_seq, positions[:, :, None], axis=1)  # [B, 7, D]
    logits = _apply(params, cfg, hidden, method=OpenVLA.action_logits)
    return logits, hidden[:, 0]
