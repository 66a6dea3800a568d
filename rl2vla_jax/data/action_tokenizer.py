"""OpenVLA's 256-bin action tokenizer.

bins = linspace(-1, 1, 256), centres c_j = (bins_j + bins_{j+1}) / 2 (255 of them).
Encode: d = digitize(clip(a, -1, 1), bins) in 1..256, vocab id = E - d, where E is one past
the last action id (32000 at 7B): ids E-256 .. E-1. Decode: j = clip(E - id - 1, 0, 254),
a = c_j. A "bin index" k = id - (E - 256) in 0..255 is what the policy samples.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


def bin_centers(n_bins: int = 256) -> np.ndarray:
    bins = np.linspace(-1.0, 1.0, n_bins)
    return (bins[:-1] + bins[1:]) / 2.0


def decode_bin_indices(bin_indices, n_bins: int = 256):
    """Bin indices k (0..n_bins-1) -> normalised actions c[clip(n_bins - 1 - k, 0, n_bins - 2)]:
    a high bin index is a low action. numpy in, numpy out; a jax array (or tracer) in, jnp out."""
    xp = jnp if isinstance(bin_indices, jax.Array) else np
    index = xp.clip(n_bins - 1 - xp.asarray(bin_indices), 0, n_bins - 2)
    return xp.asarray(bin_centers(n_bins))[index]


@dataclasses.dataclass(frozen=True)
class ActionTokenizer:
    action_token_end: int
    n_bins: int = 256

    @classmethod
    def from_model_config(cls, model_config) -> ActionTokenizer:
        return cls(model_config.action_token_end, model_config.n_action_bins)

    @property
    def action_token_begin(self) -> int:
        return self.action_token_end - self.n_bins

    @property
    def bins(self) -> np.ndarray:
        return np.linspace(-1.0, 1.0, self.n_bins)

    @property
    def bin_centers(self) -> np.ndarray:
        return bin_centers(self.n_bins)

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Normalised actions in [-1, 1] -> vocab ids (int64, same shape)."""
        digits = np.digitize(np.clip(np.asarray(actions, np.float64), -1.0, 1.0), self.bins)
        return self.action_token_end - digits

    def encode_bins(self, actions: np.ndarray) -> np.ndarray:
        """Normalised actions -> bin indices 0..255 (what `action_logits_and_hidden` takes)."""
        return self.token_ids_to_bins(self.encode(actions))

    def decode(self, token_ids: np.ndarray) -> np.ndarray:
        """Vocab ids -> normalised actions (bin centres)."""
        index = np.clip(self.action_token_end - np.asarray(token_ids) - 1, 0, self.n_bins - 2)
        return self.bin_centers[index]

    def decode_bins(self, bin_indices: np.ndarray) -> np.ndarray:
        return decode_bin_indices(np.asarray(bin_indices), self.n_bins)

    def token_ids_to_bins(self, token_ids: np.ndarray) -> np.ndarray:
        return np.asarray(token_ids) - self.action_token_begin

    def bins_to_token_ids(self, bin_indices: np.ndarray) -> np.ndarray:
        return np.asarray(bin_indices) + self.action_token_begin
