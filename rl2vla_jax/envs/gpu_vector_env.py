"""The GPU backend of `rl2vla_jax.envs.vector_env.make_vector_env`: every env in one batched
ManiSkill GPU simulation, so it steps all envs at once (no send/receive per group of envs, hence
no pipelined rollouts: `env.pipeline_groups` must stay 1 with it)."""

from __future__ import annotations

import time

import numpy as np

from rl2vla_jax.envs.cpu_worker import INFO_KEYS
from rl2vla_jax.envs.vector_env import Observation, episode_seeds


class GpuVectorEnv:
    """All envs in one batched ManiSkill GPU simulation; JAX arrays in and out via DLPack."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        image_size: int,
        max_episode_steps: int,
        seed: int = 0,
        env_options: dict | None = None,
    ):
        import gymnasium as gym
        import torch

        import rl2vla_jax.envs  # noqa: F401  (registers the ids)
        from rl2vla_jax.envs.actions import CONTROL_MODE

        self.torch = torch
        self.num_envs = int(num_envs)
        self.max_episode_steps = int(max_episode_steps)
        self.default_seed = seed
        self.env = gym.make(
            env_id,
            num_envs=self.num_envs,
            obs_mode="rgb",
            control_mode=CONTROL_MODE,
            sim_backend="physx_cuda",
            image_size=image_size,
            max_episode_steps=max_episode_steps,
            **(env_options or {}),
        )
        self.instructions: list[str] = [""] * self.num_envs
        self.elapsed_steps = 0
        self.started = time.time()

    def _observation(self, obs) -> Observation:
        from rl2vla_jax.envs.bridge import torch_to_jax

        # The renderer writes into the same buffer every frame: clone, then share without copying.
        images = obs["sensor_data"]["base_camera"]["rgb"].clone()
        return Observation(images=torch_to_jax(images), instructions=list(self.instructions))

    def reset(self, seed: int | list[int] | None = None) -> Observation:
        obs, _ = self.env.reset(
            seed=episode_seeds(self.default_seed if seed is None else seed, self.num_envs)
        )
        self.instructions = list(self.env.unwrapped.instructions)
        self.elapsed_steps = 0
        return self._observation(obs)

    def step(self, actions):
        from rl2vla_jax.envs.actions import MAX_TRANSLATION, ROTATION_SCALE
        from rl2vla_jax.envs.bridge import jax_to_torch

        torch = self.torch
        device = self.env.unwrapped.device
        if isinstance(actions, np.ndarray):
            actions = torch.as_tensor(actions, dtype=torch.float32, device=device)
        else:
            actions = jax_to_torch(actions).to(device=device, dtype=torch.float32)
        controller = torch.empty_like(actions)
        controller[:, :3] = (actions[:, :3] / MAX_TRANSLATION).clamp(-1, 1)
        controller[:, 3:6] = actions[:, 3:6] / ROTATION_SCALE
        controller[:, 6] = (2 * actions[:, 6] - 1).clamp(-1, 1)
        obs, reward, _, _, info = self.env.step(controller)
        self.elapsed_steps += 1
        to_numpy = lambda x: x.detach().cpu().numpy()
        out_info = {key: to_numpy(info[key]).astype(bool) for key in INFO_KEYS if key in info}
        out_info["worker_crashed"] = np.zeros(self.num_envs, dtype=bool)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.full(self.num_envs, self.elapsed_steps >= self.max_episode_steps)
        return self._observation(obs), to_numpy(reward).astype(np.float32), terminated, truncated, out_info

    def close(self):
        self.env.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
