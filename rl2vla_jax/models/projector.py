"""Prismatic's fused-backbone projector: vision features -> LLM embeddings.

    y = fc3(GELU(fc2(GELU(fc1(x)))))   fc1: V -> 4V, fc2: 4V -> D, fc3: D -> D (all with bias),

with V = dino + siglip width (2176 at 7B) and the exact erf GELU.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rl2vla_jax.models.config import LoraConfig
from rl2vla_jax.models.lora import Linear
from rl2vla_jax.models.vit import exact_gelu


class FusedProjector(nn.Module):
    vision_dim: int
    llm_dim: int
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    lora: LoraConfig | None = None

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        common = dict(dtype=self.dtype, param_dtype=self.param_dtype, lora=self.lora)
        x = exact_gelu(Linear(4 * self.vision_dim, name="fc1", **common)(features))
        x = exact_gelu(Linear(self.llm_dim, name="fc2", **common)(x))
        return Linear(self.llm_dim, name="fc3", **common)(x)
