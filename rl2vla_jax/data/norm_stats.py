"""Action normalisation statistics (`norm_stats` in config.json / dataset_statistics.json).

Un-normalise (OpenVLA): a' = 0.5 (a + 1) (q99 - q01) + q01 where mask, else a.
Normalise (training):  a = clip(2 (x - q01) / (q99 - q01 + 1e-8) - 1, -1, 1) where mask, else x.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rl2vla_jax.validation import ConfigError


def load_norm_stats(path: str) -> dict[str, Any]:
    """A dataset_statistics.json file, or a checkpoint's config.json (its `norm_stats`)."""
    with open(path) as f:
        data = json.load(f)
    if os.path.basename(path) == "config.json" or "norm_stats" in data:
        data = data.get("norm_stats") or {}
    return data


def select_stats(norm_stats: dict[str, Any], unnorm_key: str | None) -> dict[str, Any]:
    """The `action` statistics of one dataset; the key may be omitted when there is only one."""
    if unnorm_key is None:
        if len(norm_stats) != 1:
            raise ConfigError(f"the checkpoint has statistics for {sorted(norm_stats)}: pass --unnorm_key")
        unnorm_key = next(iter(norm_stats))
    if unnorm_key not in norm_stats:
        raise ConfigError(f"unnorm_key {unnorm_key!r} is not one of {sorted(norm_stats)}")
    return norm_stats[unnorm_key]["action"]


def _arrays(action_stats: dict[str, Any]):
    q01 = np.asarray(action_stats["q01"], np.float64)
    q99 = np.asarray(action_stats["q99"], np.float64)
    mask = np.asarray(action_stats.get("mask", np.ones_like(q01, dtype=bool)), bool)
    return q01, q99, mask


def unnormalize(actions, action_stats: dict[str, Any]):
    """numpy in, float64 numpy out; a jax array (or tracer) in, float32 jnp out, computed where
    it lives (device-resident rollouts), so within float32 rounding of the numpy result."""
    q01, q99, mask = _arrays(action_stats)
    if isinstance(actions, jax.Array):
        q01, q99, actions = (jnp.asarray(x, jnp.float32) for x in (q01, q99, actions))
        return jnp.where(mask, 0.5 * (actions + 1.0) * (q99 - q01) + q01, actions)
    actions = np.asarray(actions, np.float64)
    return np.where(mask, 0.5 * (actions + 1.0) * (q99 - q01) + q01, actions)


def normalize(actions: np.ndarray, action_stats: dict[str, Any]) -> np.ndarray:
    q01, q99, mask = _arrays(action_stats)
    actions = np.asarray(actions, np.float64)
    return np.where(mask, np.clip(2.0 * (actions - q01) / (q99 - q01 + 1e-8) - 1.0, -1.0, 1.0), actions)
