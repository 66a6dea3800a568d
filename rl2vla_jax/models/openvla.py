"""OpenVLA = fused DINOv2+SigLIP backbone -> projector -> Llama-2, in one Flax module.

Input sequence (fully causal, patches included):
    embeds = [emb(BOS), projector(features) (num_patches tokens), emb(rest of the prompt)]
so prompt token i >= 1 sits at sequence index i + num_patches. Prompts are right-padded:
sequence index == RoPE position, and what follows a row's last real token is never attended
to by that row's real tokens.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rl2vla_jax.models.config import OpenVLAConfig
from rl2vla_jax.models.llama import LlamaModel
from rl2vla_jax.models.projector import FusedProjector
from rl2vla_jax.models.vit import FusedBackbone


class OpenVLA(nn.Module):
    config: OpenVLAConfig

    def setup(self):
        cfg = self.config
        common = dict(
            dtype=jnp.dtype(cfg.compute_dtype), param_dtype=jnp.dtype(cfg.param_dtype), lora=cfg.lora
        )
        self.vision = FusedBackbone(
            cfg.dino, cfg.siglip, remat=cfg.remat_policy, scan_unroll=cfg.scan_unroll, **common
        )
        self.projector = FusedProjector(cfg.vision_dim, cfg.llm.hidden_size, **common)
        self.llm = LlamaModel(cfg.llm, remat=cfg.remat_policy, scan_unroll=cfg.scan_unroll, **common)

    def tower_features(self, pixel_values):
        return self.vision.tower_features(pixel_values)

    def project_image(self, pixel_values: jax.Array) -> jax.Array:
        """[B, H, W, 6] -> [B, num_patches, D] patch embeddings for the LLM."""
        return self.projector(self.vision(pixel_values))

    def embed_sequence(self, pixel_values: jax.Array, input_ids: jax.Array) -> jax.Array:
        """[emb(ids[:, :1]), patches, emb(ids[:, 1:])]: [B, L + num_patches, D]."""
        patches = self.project_image(pixel_values)
        tokens = self.llm.embed(input_ids)
        return jnp.concatenate([tokens[:, :1], patches.astype(tokens.dtype), tokens[:, 1:]], axis=1)

    def hidden_states(self, pixel_values, input_ids, cache=None):
        """Final-normed hidden states over the whole sequence (and the filled cache if given)."""
        embeds = self.embed_sequence(pixel_values, input_ids)
        batch, seq = embeds.shape[:2]
        positions = jnp.broadcast_to(jnp.arange(seq), (batch, seq))
        write_index = jnp.zeros((batch,), jnp.int32)
        return self.llm.decode(embeds, positions, cache, write_index)

    def __call__(self, pixel_values: jax.Array, input_ids: jax.Array) -> jax.Array:
        """Full-vocabulary logits [B, L + num_patches, vocab] (for parity tests)."""
        hidden, _ = self.hidden_states(pixel_values, input_ids)
        return self.llm.logits(hidden)

    def decode_tokens(self, token_ids, positions, cache):
        """KV-cached step: token_ids [B, S] at positions [B, S] -> (hidden [B, S, D], cache)."""
        embeds = self.llm.embed(token_ids)
        return self.llm.decode(embeds, positions, cache, positions[:, 0])

    def action_logits(self, hidden: jax.Array) -> jax.Array:
        """Logits over the n_action_bins action ids only, float32: [..., D] -> [..., 256]."""
        cfg = self.config
        return self.llm.logits_slice(hidden, cfg.action_token_begin, cfg.action_token_end)
