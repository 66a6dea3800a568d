"""Which episodes a training iteration plays: their seeds (initial states) and GRPO groups."""

import jax
import numpy as np


def episodes_per_iteration(config) -> int:
    """Episodes one process plays per iteration: each of its envs plays rollout.episodes_per_env."""
    return config.env.num_envs * config.rollout.episodes_per_env


def samples_per_iteration(config) -> int:
    """Env steps (PPO samples) one process collects per iteration; episodes run to the horizon."""
    return episodes_per_iteration(config) * config.env.max_episode_steps


def episode_seeds(config, iteration: int, group_size: int, episode: int = 0) -> list[int]:
    """Deterministic seeds of the `episode`-th episodes the envs play in `iteration` (of
    `rollout.episodes_per_env`), so a resumed run replays the same episodes; GRPO (s) gives every
    env of a group the same seed, hence the same initial state, or with
    grpo.same_init="batch" every env of the round, on every process (RL4VLA's
    --use_same_init draws one episode_id for all its envs: SimplerEnv/simpler_env/env/simpler_wrapper.py)."""
    num_envs = config.env.num_envs  # per process; each process runs its own envs
    slot = iteration * config.rollout.episodes_per_env + episode  # = iteration with one episode per env
    if config.algorithm == "grpo_s" and config.grpo.same_init == "batch":
        return [config.seed * 1_000_003 + slot * jax.process_count() * num_envs] * num_envs
    base = config.seed * 1_000_003 + (slot * jax.process_count() + jax.process_index()) * num_envs
    if config.algorithm == "grpo_s":
        return [base + i // group_size for i in range(config.env.num_envs)]
    return [base + i for i in range(config.env.num_envs)]


def rollout_group_ids(num_envs: int, group_size: int, episodes_per_env: int, process: int) -> np.ndarray:
    """The GRPO group of every episode of one process's rollout, in `episodes.concatenate`'s
    order (round after round, env after env): ids unique over rounds and processes, so no group
    mixes episodes of two rounds (which start from different states under GRPO (s))."""
    groups_per_round = -(-num_envs // group_size)
    rounds = np.arange(episodes_per_env)[:, None]
    ids = (np.arange(num_envs) // group_size + groups_per_round * rounds).ravel()
    return ids + process * groups_per_round * episodes_per_env
