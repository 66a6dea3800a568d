"""The `rl4vla` suite on RL4VLA's ManiSkill fork, as RL4VLA's own wrapper drives it.

What RL4VLA does (gen-robot/RL4VLA, SimplerEnv/simpler_env/env/simpler_wrapper.py and
ManiSkill/mani_skill/envs/tasks/digital_twins/bridge_dataset_eval/put_on_in_scene_multi.py):
  - one batched env: obs_mode "rgb+segmentation" (the only mode those tasks support), WidowX
    control mode CONTROL_MODE, sim 500 Hz / control 5 Hz, the default shader pack;
  - `reset(options={"obj_set": ..., "episode_id": ...})`: the setting's object set is a RESET
    option; the episode id picks object, plate, table look and poses (without one the fork
    draws it from torch's global RNG, so we derive it from the episode seed: equal seeds give
    equal initial states, as GRPO (s) needs);
  - images from the 640x480 "3rd_view_camera", instructions from
    `env.unwrapped.get_language_instruction()`;
  - the policy's physical action goes to the controller as is: translation, axis-angle
    rotation, gripper 2 * (open > 0.5) - 1;
  - reward: the step difference of 0.1 grasped + 0.1 grasped >= 5 steps + 1.0 success while
    grasped (its `get_reward`); episodes never end early.
Observation, reward and info follow vector_env's interface; `make_env` is injectable so the
adapter is tested against a stand-in of the fork's env class.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CONTROL_MODE = "arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos"
CAMERA = "3rd_view_camera"
SIM_CONFIG = {"sim_freq": 500, "control_freq": 5}
_EPISODE_ID_RANGE = 2**31 - 1  # the fork takes it modulo its number of episodes


def _numpy(x) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


def episode_ids(seeds: list[int]) -> np.ndarray:
    """A well-mixed episode id per seed (the fork's ids enumerate layouts in order)."""
    return np.array([np.random.default_rng(s).integers(_EPISODE_ID_RANGE) for s in seeds], np.int64)


def rl4vla_action(actions: np.ndarray) -> np.ndarray:
    """[B, 7] physical OpenVLA action -> the fork's controller action (RL4VLA's _process_action)."""
    actions = np.asarray(actions, np.float32)
    out = actions.copy()
    out[:, 6] = np.where(actions[:, 6] > 0.5, 1.0, -1.0)
    return out


def _make_fork_env(env_id: str, num_envs: int, max_episode_steps: int, backend: str):
    import gymnasium as gym

    return gym.make(
        env_id,
        num_envs=num_envs,
        obs_mode="rgb+segmentation",
        control_mode=CONTROL_MODE,
        sim_backend="gpu" if backend == "gpu" else "cpu",
        sim_config=SIM_CONFIG,
        max_episode_steps=max_episode_steps,
        sensor_configs={"shader_pack": "default"},
    )


class Rl4vlaVectorEnv:
    """`num_envs` envs of one `rl4vla` setting (a `suites.SuiteEntry`) in one batched fork env."""

    def __init__(
        self,
        entry,
        num_envs: int,
        max_episode_steps: int,
        seed: int = 0,
        backend: str = "gpu",
        make_env: Callable | None = None,
    ):
        import torch

        self.torch = torch
        self.entry = entry
        self.num_envs = int(num_envs)
        self.max_episode_steps = int(max_episode_steps)
        self.default_seed = seed
        self.env = (make_env or _make_fork_env)(entry.env_id, self.num_envs, self.max_episode_steps, backend)
        self.instructions: list[str] = [""] * self.num_envs
        self.elapsed_steps = 0
        self._potential = np.zeros(self.num_envs, np.float32)

    def _observation(self, obs):
        from rl2vla_jax.envs.vector_env import Observation

        images = _numpy(obs["sensor_data"][CAMERA]["rgb"]).astype(np.uint8)
        return Observation(images=images, instructions=list(self.instructions))

    def reset(self, seed: int | list[int] | None = None):
        from rl2vla_jax.envs.vector_env import episode_seeds

        seeds = episode_seeds(self.default_seed if seed is None else seed, self.num_envs)
        device = getattr(self.env.unwrapped, "device", "cpu")
        ids = self.torch.as_tensor(episode_ids(seeds), device=device)
        options = {**self.entry.options, "episode_id": ids}
        obs, _ = self.env.reset(seed=seeds, options=options)
        self.instructions = list(self.env.unwrapped.get_language_instruction())
        self.elapsed_steps = 0
        self._potential = np.zeros(self.num_envs, np.float32)
        return self._observation(obs)

    def step(self, actions):
        device = getattr(self.env.unwrapped, "device", "cpu")
        action = self.torch.as_tensor(rl4vla_action(_numpy(actions)), device=device)
        obs, _, _, _, info = self.env.step(action)
        self.elapsed_steps += 1
        grasped = _numpy(info["is_src_obj_grasped"]).reshape(-1).astype(bool)
        success = _numpy(info["success"]).reshape(-1).astype(bool)
        potential = (
            0.1 * grasped
            + 0.1 * _numpy(info["consecutive_grasp"]).reshape(-1).astype(bool)
            + 1.0 * (success & grasped)
        ).astype(np.float32)
        reward, self._potential = potential - self._potential, potential
        out_info = {
            "success": success,
            "is_grasped": grasped,
            "worker_crashed": np.zeros(self.num_envs, bool),
        }
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.full(self.num_envs, self.elapsed_steps >= self.max_episode_steps)
        return self._observation(obs), reward, terminated, truncated, out_info

    def close(self):
        self.env.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
