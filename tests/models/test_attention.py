"""Attention's custom VJP and the [tokens, features] Linear against plain autodiff references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rl2vla_jax.models import attention
from rl2vla_jax.models.config import LoraConfig
from rl2vla_jax.models.lora import Linear

BATCH, SEQ, HEADS, HEAD_DIM = 3, 11, 2, 5


def token_major_attention(q, k, v, mask):
    """The einsum form the models used before the head-major layout (float32)."""
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
    out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)
    return out.reshape(*q.shape[:2], -1)


def causal_mask_with_padding():
    """Causal, and row 1's last 4 keys never attended (a right-padded prompt's slots)."""
    positions = jnp.broadcast_to(jnp.arange(SEQ), (BATCH, SEQ))
    mask = positions[:, None, None, :] <= positions[:, None, :, None]
    return mask & ~((jnp.arange(BATCH)[:, None, None, None] == 1) & (positions[:, None, None, :] >= SEQ - 4))


@pytest.mark.parametrize("masked", [False, True])
def test_attention_values_and_gradients_match_autodiff(masked):
    rng = np.random.default_rng(0)
    q, k, v, cotangent = (
        jnp.asarray(rng.normal(size=(BATCH, SEQ, HEADS, HEAD_DIM)), jnp.float32) for _ in range(4)
    )
    mask = causal_mask_with_padding() if masked else None

    def loss(fn, q, k, v):
        return jnp.sum(fn(q, k, v, mask).reshape(cotangent.shape) * cotangent)

    ours = lambda q, k, v, mask: attention.dot_product_attention(q, k, v, mask, jnp.float32)
    np.testing.assert_allclose(ours(q, k, v, mask), token_major_attention(q, k, v, mask), atol=1e-6)
    got = jax.grad(lambda *a: loss(ours, *a), argnums=(0, 1, 2))(q, k, v)
    want = jax.grad(lambda *a: loss(token_major_attention, *a), argnums=(0, 1, 2))(q, k, v)
    for g, w in zip(got, want, strict=True):
        assert float(jnp.max(jnp.abs(w))) > 1e-3  # every input gets a gradient
        np.testing.assert_allclose(g, w, atol=2e-6, rtol=1e-5)


def test_attention_custom_vjp_matches_autodiff_in_bfloat16():
    rng = np.random.default_rng(1)
    q, k, v = (jnp.asarray(rng.normal(size=(BATCH, HEADS, SEQ, HEAD_DIM)), jnp.bfloat16) for _ in range(3))
    mask = causal_mask_with_padding()

    def loss(fn, q, k, v):
        return jnp.sum(fn(q, k, v, mask, jnp.bfloat16).astype(jnp.float32) ** 2)

    got = jax.grad(lambda *a: loss(attention.attention_core, *a), argnums=(0, 1, 2))(q, k, v)
    want = jax.grad(lambda *a: loss(attention.attention_reference, *a), argnums=(0, 1, 2))(q, k, v)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype == jnp.bfloat16
        np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), atol=0.05, rtol=0.05)


def test_linear_on_rows_equals_the_batched_dot_and_its_gradients():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(3, 7, 13)), jnp.float32)
    layer = Linear(17, lora=LoraConfig(rank=4, alpha=6.0, targets=(r".*",)))
    params = layer.init(jax.random.key(0), x)["params"]
    params = {**params, "lora_b": jnp.asarray(rng.normal(size=(4, 17)), jnp.float32)}

    def batched(p, x):  # the 3-D formula: y = x W + b + (alpha / r) (x A) B
        return x @ p["kernel"] + p["bias"] + (x @ p["lora_a"]) @ p["lora_b"] * 1.5

    y = layer.apply({"params": params}, x)
    assert y.shape == (3, 7, 17)
    np.testing.assert_allclose(y, batched(params, x), atol=1e-5)
    got = jax.grad(lambda p: jnp.sum(jnp.sin(layer.apply({"params": p}, x))))(params)
    want = jax.grad(lambda p: jnp.sum(jnp.sin(batched(p, x))))(params)
    for name in params:
        np.testing.assert_allclose(got[name], want[name], atol=1e-4, rtol=1e-5)
