"""One simulator per process for the CPU backend (ManiSkill's CPU sim allows one env per process).

Runs in a `spawn`ed child (fork hangs with SAPIEN). It imports no JAX, registers the task
family itself (spawned children start from a fresh interpreter), and speaks a tiny pipe
protocol with `vector_env.CpuVectorEnv`:
  ("reset", seed)      -> ("ok", image [H,W,3] uint8, instruction, info)
  ("step", action[7])  -> ("ok", image, reward, info, seconds inside env.step)
                          action in the OpenVLA convention
  ("make", (env_id, env_options)) -> ("ready", None): the old env closed, a new one built in
                          this process (another setting without a new interpreter and imports)
  ("close", None)      -> exits
Any exception is sent back as ("error", traceback text).
"""

from __future__ import annotations

import time
import traceback

import numpy as np

INFO_KEYS = ("success", "success_once", "is_grasped", "ever_grasped", "on_receptacle")


def make_single_env(
    env_id: str,
    image_size: int,
    max_episode_steps: int,
    obs_mode: str = "rgb",
    env_options: dict | None = None,
):
    """One CPU env; `env_options` are the task's own keyword arguments (camera, layout)."""
    import gymnasium as gym

    import rl2vla_jax.envs  # noqa: F401  (registers the put-on-plate ids in this process)
    from rl2vla_jax.envs.actions import CONTROL_MODE
    from rl2vla_jax.envs.rendering import require_vulkan

    require_vulkan()
    return gym.make(
        env_id,
        num_envs=1,
        obs_mode=obs_mode,
        control_mode=CONTROL_MODE,
        sim_backend="cpu",
        image_size=image_size,
        max_episode_steps=max_episode_steps,
        **(env_options or {}),
    )


def _image(obs) -> np.ndarray:
    return np.ascontiguousarray(obs["sensor_data"]["base_camera"]["rgb"][0].cpu().numpy())


def _info(info) -> dict:
    return {key: bool(np.asarray(info[key]).reshape(-1)[0]) for key in INFO_KEYS if key in info}


def worker_main(conn, env_id: str, image_size: int, max_episode_steps: int, env_options: dict) -> None:
    from rl2vla_jax.envs.actions import openvla_to_controller

    try:
        env = make_single_env(env_id, image_size, max_episode_steps, env_options=env_options)
        conn.send(("ready", None))
    except Exception:  # noqa: BLE001  (any failure to build must reach the parent, not vanish)
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            command, data = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        try:
            if command == "reset":
                # A fresh scene every episode: the physics and renderer otherwise carry state from
                # earlier episodes (a seed's frames differed after other episodes), so a resumed
                # run's new workers would not replay the uninterrupted run. Costs ~0.5 s a reset.
                obs, info = env.reset(seed=int(data), options={"reconfigure": True})
                conn.send(("ok", _image(obs), env.unwrapped.instructions[0], _info(info)))
            elif command == "step":
                started = time.perf_counter()
                obs, reward, _, _, info = env.step(openvla_to_controller(np.asarray(data, dtype=np.float32)))
                image = _image(obs)
                seconds = time.perf_counter() - started
                conn.send(("ok", image, float(np.asarray(reward).reshape(-1)[0]), _info(info), seconds))
            elif command == "make":
                env.close()
                env_id, env_options = data
                env = make_single_env(env_id, image_size, max_episode_steps, env_options=env_options)
                conn.send(("ready", None))
            elif command == "close":
                break
            else:
                raise ValueError(f"unknown command {command!r}")
        except Exception:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))
    env.close()
    conn.close()
