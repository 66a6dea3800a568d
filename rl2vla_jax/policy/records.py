"""Per-sample records of episodes, for the critic's diagnostics (`python -m rl2vla_jax.diagnostics`).

One row per env step of one episode; columns (N rows):
  setting   str     the env setting;                category  str   its OOD category ("" unknown)
  seed      int64   the episode's env seed;         iteration int64 RL iteration (-1: evaluation)
  step      int32   t within the episode;           env       int32 the episode's column in its batch
                    (training: env index + k x env.num_envs for an env's k-th episode of the iteration)
  entropies float32 [N, 7] token entropies H_1..H_7 (normalised to [0, 1])
  descriptor float32 u, the critic's entropy input;  value  float32 V(s_t; u_t) (0 without a critic)
  discounted_return float32 G_t = r_t + gamma (1 - d_t) G_{t+1}, G_T = 0 (realised, no bootstrap)
  td_error  float32 r_t + gamma (1 - d_t) V_{t+1} - V_t (V_T = the bootstrap value)
  advantage float32 GAE(gamma, lambda), before any normalisation
  reward    float32 r_t;                            success bool  the episode's success (last step)
Stored as one compressed npz per file (columnar, no pickles): `write_records` / `read_records`.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from rl2vla_jax import files
from rl2vla_jax.rl import advantages as adv_lib

RECORDS_FOLDER = "records"  # in a run's workdir and in an evaluation's results folder


def episode_records(
    steps: dict[str, np.ndarray],
    bootstrap_value: np.ndarray,
    success: np.ndarray,
    seeds,
    gamma: float,
    gae_lambda: float,
    setting: str,
    category: str = "",
    iteration: int = -1,
) -> dict[str, np.ndarray]:
    """The records of one recorded `run_episodes` call (`Episodes.steps`, time-major [T, B])."""
    rewards = np.asarray(steps["rewards"], np.float32)
    values = np.asarray(steps["values"], np.float32)
    dones = np.asarray(steps["dones"], np.float32)
    horizon, num_envs = rewards.shape
    bootstrap = np.asarray(bootstrap_value, np.float32)
    advantages, _ = adv_lib.gae_advantages(rewards, values, dones, bootstrap, gamma, gae_lambda)
    returns = adv_lib.reward_to_go(rewards, dones, gamma)
    next_values = np.concatenate([values[1:], bootstrap[None]], axis=0)
    td_error = rewards + gamma * (1.0 - dones) * next_values - values
    n = horizon * num_envs

    def flat(x):
        return np.asarray(x).reshape(n, *np.shape(x)[2:])

    grid_t, grid_b = np.meshgrid(np.arange(horizon), np.arange(num_envs), indexing="ij")
    return {
        "setting": np.full(n, setting),
        "category": np.full(n, category),
        "seed": flat(np.broadcast_to(np.asarray(seeds, np.int64), (horizon, num_envs))),
        "iteration": np.full(n, iteration, np.int64),
        "step": flat(grid_t).astype(np.int32),
        "env": flat(grid_b).astype(np.int32),
        "entropies": flat(steps["entropies"]).astype(np.float32),
        "descriptor": flat(steps["descriptor"]).astype(np.float32),
        "value": flat(values),
        "discounted_return": flat(np.asarray(returns, np.float32)),
        "td_error": flat(td_error.astype(np.float32)),
        "advantage": flat(np.asarray(advantages, np.float32)),
        "reward": flat(rewards),
        "success": flat(np.broadcast_to(np.asarray(success, bool), (horizon, num_envs))),
    }


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]} if parts else {}


def write_records(path: str, columns: dict[str, np.ndarray]) -> None:
    """Atomically (temp file + rename): a reader never sees half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with files.replacing(path, "wb") as f:
        np.savez_compressed(f, **columns)


def read_records(paths) -> dict[str, np.ndarray]:
    """Every records file under a folder (recursively), or the given files, concatenated."""
    if isinstance(paths, str):
        paths = sorted(glob.glob(os.path.join(paths, "**", "*.npz"), recursive=True))
    parts = []
    for path in paths:
        with np.load(path, allow_pickle=False) as data:
            parts.append({key: data[key] for key in data.files})
    return concat(parts)
