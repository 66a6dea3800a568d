"""OpenVLA's 256-bin action tokenizer (host-side numpy).

bins = linspace(-1, 1, 256), centres c_j = (bins_j + bins_{j+1}) / 2 (255 of them).
Encode: d = digitize(clip(a, -1, 1), bins) in 1..256, vocab id = E - d, where E is one past
the last action id (32000 at 7B): ids E-256 .. E-1. Decode: j = clip(E - id - 1, 0, 254),
a = c_j. A "bin index" k = id - (E - 256) in 0..255 is what the policy samples.
"""

from __future__ import annotations

import dataclasses

import numpy as np


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
        bins = self.bins
        return (bins[:-1] + bins[1:]) / 2.0

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
        return self.decode(self.bins_to_token_ids(bin_indices))

    def token_ids_to_bins(self, token_ids: np.ndarray) -> np.ndarray:
        return np.asarray(token_ids) - self.action_token_begin

    def bins_to_token_ids(self, bin_indices: np.ndarray) -> np.ndarray:
        return np.asarray(bin_indices) + self.action_token_begin
