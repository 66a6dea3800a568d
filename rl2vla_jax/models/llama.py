"""Llama-2 decoder in Flax, with HF numerics and an explicit KV cache.

Layer:  h = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))),  n1 = RMSNorm(x)
        y = h + down_proj(silu(gate_proj(n2)) * up_proj(n2)),                   n2 = RMSNorm(h)
RMSNorm(x) = w * (x / sqrt(mean(x^2) + eps)) computed in float32 and cast back before the
weight (HF order). RoPE is HF's rotate_half layout: with f_j = pos * theta^(-2j/d),
x' = x * cos(f) + rotate_half(x) * sin(f), rotate_half([a, b]) = [-b, a], f repeated twice.
No biases anywhere; the LM head is untied (and LoRA-able: PEFT's "all-linear" adapts it).

KV cache: {"k", "v"}: [layers, B, T, kv_heads, head_dim]. Each call writes its S new keys at
slots write_index[b] .. write_index[b]+S-1 of row b and attends to every slot whose index is
<= the query position. Sequences are right-padded, so slot index == RoPE position and a
padded slot is either overwritten by a later token or never attended to.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rl2vla_jax.models.attention import dot_product_attention
from rl2vla_jax.models.config import LlamaConfig, LoraConfig
from rl2vla_jax.models.lora import Linear, is_lora_target, lora_update, module_path
from rl2vla_jax.models.vit import scan_layers


class RMSNorm(nn.Module):
    eps: float
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        weight = self.param("weight", nn.initializers.ones, (x.shape[-1],), self.param_dtype)
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return weight.astype(x.dtype) * normed.astype(x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
    """x: [B, S, H, Dh], positions: [B, S] -> x rotated (HF rotate_half layout)."""
    head_dim = x.shape[-1]
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, S, Dh/2]
    angles = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]
    cos, sin = jnp.cos(angles).astype(x.dtype), jnp.sin(angles).astype(x.dtype)
    return x * cos + rotate_half(x) * sin


def write_cache(cache: jax.Array, new: jax.Array, write_index: jax.Array) -> jax.Array:
    """cache [B, T, H, Dh], new [B, S, H, Dh]: row b's new entries go to slots write_index[b]+."""
    update = lambda c, n, i: jax.lax.dynamic_update_slice(c, n.astype(c.dtype), (i, 0, 0))
    return jax.vmap(update)(cache, new, write_index)


class LlamaAttention(nn.Module):
    config: LlamaConfig
    dtype: Any
    param_dtype: Any
    lora: LoraConfig | None

    @nn.compact
    def __call__(self, x, positions, layer_cache, write_index):
        cfg = self.config
        batch, seq, _ = x.shape
        head_dim = cfg.head_dim
        dense = dict(use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype, lora=self.lora)
        q = Linear(cfg.num_heads * head_dim, name="q_proj", **dense)(x).reshape(
            batch, seq, cfg.num_heads, head_dim
        )
        k = Linear(cfg.num_kv_heads * head_dim, name="k_proj", **dense)(x)
        v = Linear(cfg.num_kv_heads * head_dim, name="v_proj", **dense)(x)
        k = k.reshape(batch, seq, cfg.num_kv_heads, head_dim)
        v = v.reshape(batch, seq, cfg.num_kv_heads, head_dim)
        q = apply_rope(q, positions, cfg.rope_theta)
        k = apply_rope(k, positions, cfg.rope_theta)
        if layer_cache is None:
            keys, values, key_positions, new_cache = k, v, positions, None
        else:
            keys = write_cache(layer_cache["k"], k, write_index)
            values = write_cache(layer_cache["v"], v, write_index)
            new_cache = {"k": keys, "v": values}
            key_positions = jnp.broadcast_to(jnp.arange(keys.shape[1]), (batch, keys.shape[1]))
        groups = cfg.num_heads // cfg.num_kv_heads
        if groups > 1:
            keys, values = jnp.repeat(keys, groups, axis=2), jnp.repeat(values, groups, axis=2)
        causal = key_positions[:, None, None, :] <= positions[:, None, :, None]
        out = dot_product_attention(q, keys, values, causal, self.dtype)
        out = Linear(cfg.hidden_size, name="o_proj", **dense)(out)
        return out, new_cache


class LlamaMlp(nn.Module):
    config: LlamaConfig
    dtype: Any
    param_dtype: Any
    lora: LoraConfig | None

    @nn.compact
    def __call__(self, x):
        cfg = self.config
        dense = dict(use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype, lora=self.lora)
        gate = Linear(cfg.intermediate_size, name="gate_proj", **dense)(x)
        up = Linear(cfg.intermediate_size, name="up_proj", **dense)(x)
        return Linear(cfg.hidden_size, name="down_proj", **dense)(nn.silu(gate) * up)


class LlamaLayer(nn.Module):
    config: LlamaConfig
    dtype: Any
    param_dtype: Any
    lora: LoraConfig | None

    @nn.compact
    def __call__(self, x, layer_cache, positions, write_index):
        cfg = self.config
        norm = lambda name: RMSNorm(cfg.rms_norm_eps, self.param_dtype, name=name)
        attn = LlamaAttention(cfg, self.dtype, self.param_dtype, self.lora, name="self_attn")
        attn_out, new_cache = attn(norm("input_layernorm")(x), positions, layer_cache, write_index)
        x = x + attn_out
        x = x + LlamaMlp(cfg, self.dtype, self.param_dtype, self.lora, name="mlp")(
            norm("post_attention_layernorm")(x)
        )
        return x, new_cache


class LMHead(nn.Module):
    """Untied output projection, kernel [D, vocab], float32 logits; `columns` selects vocab ids
    (the action bins) so the other rows are never multiplied."""

    vocab_size: int
    param_dtype: Any = jnp.float32
    lora: LoraConfig | None = None

    @nn.compact
    def __call__(self, hidden: jax.Array, columns: slice = slice(None)) -> jax.Array:
        kernel = self.param(
            "kernel", nn.initializers.normal(0.02), (hidden.shape[-1], self.vocab_size), self.param_dtype
        )
        logits = jnp.dot(hidden, kernel[:, columns].astype(hidden.dtype))
        if is_lora_target(module_path(self), self.lora):
            logits = logits + lora_update(self, hidden, self.vocab_size, self.lora, hidden.dtype, columns)
        return logits.astype(jnp.float32)


class LlamaModel(nn.Module):
    """Embeddings, scanned decoder layers, final RMSNorm and the (untied) LM head."""

    config: LlamaConfig
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    remat: str | None = None
    lora: LoraConfig | None = None
    scan_unroll: int = 1

    def setup(self):
        cfg = self.config
        self.embed_tokens = nn.Embed(
            cfg.vocab_size,
            cfg.hidden_size,
            embedding_init=nn.initializers.normal(0.02),
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )
        # The cache (or None) is scanned over its leading layer axis; the rest is broadcast.
        layers = scan_layers(
            LlamaLayer, cfg.num_layers, self.remat, broadcast_args=2, scanned_args=1, unroll=self.scan_unroll
        )
        self.layers = layers(cfg, self.dtype, self.param_dtype, self.lora)
        self.norm = RMSNorm(cfg.rms_norm_eps, self.param_dtype)
        self.lm_head = LMHead(cfg.vocab_size, self.param_dtype, self.lora)

    def embed(self, ids: jax.Array) -> jax.Array:
        return self.embed_tokens(ids)

    def decode(self, embeds, positions, cache=None, write_index=None):
        """embeds [B, S, D], positions [B, S] -> (final-normed hidden [B, S, D], new cache)."""
        x, new_cache = self.layers(embeds.astype(self.dtype), cache, positions, write_index)
        return self.norm(x), new_cache

    def logits(self, hidden: jax.Array) -> jax.Array:
        return self.lm_head(hidden)

    def logits_slice(self, hidden: jax.Array, begin: int, end: int) -> jax.Array:
        """Logits of vocab ids begin..end-1 only (the action bins): [.., D] -> [.., end-begin]."""
        return self.lm_head(hidden, slice(begin, end))
