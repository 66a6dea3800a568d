"""Action bins -> physical env actions: OpenVLA's de-tokenisation, then un-normalisation."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rl2vla_jax.data.action_tokenizer import decode_bin_indices
from rl2vla_jax.data.norm_stats import unnormalize


class ActionDecoder:
    """Bin indices [B, 7] -> physical actions [B, 7] float32, with the action statistics the
    policy was trained with (`norm_stats[unnorm_key]["action"]`). Host bins are decoded on the
    host (in float64, as OpenVLA); bins that are jax arrays are decoded on their device in one
    jitted call (a device-resident env takes them there: no host round trip per step)."""

    def __init__(self, model_config, action_stats: dict[str, Any]):
        self.n_bins = model_config.n_action_bins
        self.action_stats = action_stats
        self._on_device = jax.jit(
            lambda bins: unnormalize(decode_bin_indices(bins, self.n_bins), action_stats).astype(jnp.float32)
        )

    def normalised(self, bins) -> np.ndarray:
        return decode_bin_indices(np.asarray(bins), self.n_bins)

    def __call__(self, bins):
        if isinstance(bins, jax.Array):
            return self._on_device(bins)
        return unnormalize(self.normalised(bins), self.action_stats).astype(np.float32)
