"""Scripted expert for the put-on-plate family: a state machine over end-effector targets.

It reads privileged state (object and receptacle poses) from the unwrapped ManiSkill env and
emits the policy's 7-D action in the OpenVLA convention (see `actions.py`), so recorded
demonstrations are exactly what the VLA is trained to output. No motion planner (mplib
segfaults under numpy 2): each step moves the tool centre point (TCP) straight toward the
current phase's target, at most 0.1 m per step, with the gripper pointing down and its
fingers closing across the object's narrow side.
"""

from __future__ import annotations

import numpy as np
from transforms3d.euler import mat2euler, quat2mat

from rl2vla_jax.envs import catalog
from rl2vla_jax.envs.actions import MAX_ROTATION, MAX_TRANSLATION

APPROACH, DESCEND, CLOSE, LIFT, TRANSPORT, LOWER, RELEASE, RETREAT = range(8)
HOVER_ABOVE = 0.08  # metres above the object's top before descending
CARRY_HEIGHT = 0.13
PLACE_CLEARANCE = 0.02  # release the object this far above the receptacle floor
GRIPPER_STEPS = 2  # control steps to wait for the fingers to close or open


class ScriptedExpert:
    """One expert per single-scene env; call `reset()` after every env reset."""

    def __init__(self, env, max_step: float = MAX_TRANSLATION):
        """`max_step`: metres the TCP may move per step and axis. Smaller steps make longer,
        smoother demonstrations whose actions are mostly saturated (the direction to move), which
        a small cloned policy reproduces far more easily than one large exact jump."""
        if not 0 < max_step <= MAX_TRANSLATION:
            raise ValueError(f"max_step={max_step} must be in (0, {MAX_TRANSLATION}] metres")
        self.env = env.unwrapped
        self.max_step = max_step
        self.reset()

    def reset(self):
        self.phase = APPROACH
        self.phase_steps = 0

    def _state(self):
        env = self.env
        tcp = env.agent.tcp_pose.raw_pose[0].cpu().numpy()
        target = env.target_pose().raw_pose[0].cpu().numpy()
        receptacle_xyz = env.receptacle_position()[0].cpu().numpy()
        plan = env.episode_plans[0]
        kind = env.all_object_kinds[plan["target"]]
        receptacle = env.all_receptacle_kinds[plan["receptacle"]]
        return tcp, target, kind, receptacle_xyz, receptacle

    def act(self) -> np.ndarray:
        tcp, target, kind, receptacle_xyz, receptacle = self._state()
        tcp_xyz, tcp_rotation = tcp[:3], quat2mat(tcp[3:7])
        object_xyz, object_rotation = target[:3], quat2mat(target[3:7])
        object_top = object_xyz[2] + kind.resting_half_height
        grasp_z = max(object_xyz[2], 0.015)
        # Close across the object's narrow side: along its local y when its long side is x.
        across = object_rotation[:, 1] if kind.long_axis_is_x else object_rotation[:, 0]
        closing_yaw = np.arctan2(across[1], across[0])
        place_z = catalog.BASE_THICKNESS + kind.resting_half_height + PLACE_CLEARANCE + receptacle_xyz[2]

        self.phase_steps += 1
        gripper = 1.0
        if self.phase == APPROACH:
            goal = np.array([object_xyz[0], object_xyz[1], object_top + HOVER_ABOVE])
            if _reached(tcp_xyz, goal, 0.012) and _yaw_error(tcp_rotation, closing_yaw) < 0.08:
                self._advance(DESCEND)
        if self.phase == DESCEND:
            goal = np.array([object_xyz[0], object_xyz[1], grasp_z])
            if _reached(tcp_xyz, goal, 0.008) or self.phase_steps > 6:
                self._advance(CLOSE)
        if self.phase == CLOSE:
            goal, gripper = np.array([object_xyz[0], object_xyz[1], grasp_z]), 0.0
            if self.phase_steps > GRIPPER_STEPS:
                self._advance(LIFT)
        if self.phase == LIFT:
            goal, gripper = np.array([tcp_xyz[0], tcp_xyz[1], CARRY_HEIGHT]), 0.0
            if tcp_xyz[2] > CARRY_HEIGHT - 0.02:
                self._advance(TRANSPORT)
        if self.phase == TRANSPORT:
            goal, gripper = np.array([receptacle_xyz[0], receptacle_xyz[1], CARRY_HEIGHT]), 0.0
            if _reached(tcp_xyz[:2], goal[:2], 0.012):
                self._advance(LOWER)
        if self.phase == LOWER:
            goal, gripper = np.array([receptacle_xyz[0], receptacle_xyz[1], place_z]), 0.0
            if _reached(tcp_xyz, goal, 0.012) or self.phase_steps > 5:
                self._advance(RELEASE)
        if self.phase == RELEASE:
            goal, gripper = np.array([receptacle_xyz[0], receptacle_xyz[1], place_z]), 1.0
            if self.phase_steps > GRIPPER_STEPS:
                self._advance(RETREAT)
        if self.phase == RETREAT:
            goal, gripper = np.array([tcp_xyz[0], tcp_xyz[1], CARRY_HEIGHT]), 1.0

        # A lifted object that slipped out: go back and grasp it again.
        if (
            self.phase in (LIFT, TRANSPORT)
            and self.phase_steps > 2
            and not bool(self.env.target_is_grasped()[0])
        ):
            self._advance(APPROACH)

        translation = np.clip(goal - tcp_xyz, -self.max_step, self.max_step)
        rotation = _rotation_toward(tcp_rotation, closing_yaw)
        return np.concatenate([translation, rotation, [gripper]]).astype(np.float32)

    def _advance(self, phase: int):
        self.phase = phase
        self.phase_steps = 1


def _reached(position, goal, tolerance) -> bool:
    return bool(np.linalg.norm(position - goal) < tolerance)


def _desired_rotation(closing_yaw: float) -> np.ndarray:
    """TCP frame with its approach axis (z) pointing down and its closing axis (y) at closing_yaw.

    The gripper is symmetric, so of yaw and yaw + pi the one nearer the current pose is used
    (see `_rotation_toward`)."""
    y_axis = np.array([np.cos(closing_yaw), np.sin(closing_yaw), 0.0])
    z_axis = np.array([0.0, 0.0, -1.0])
    x_axis = np.cross(y_axis, z_axis)
    return np.stack([x_axis, y_axis, z_axis], axis=1)


def _nearest_symmetric_yaw(tcp_rotation: np.ndarray, closing_yaw: float) -> float:
    current = np.arctan2(tcp_rotation[1, 1], tcp_rotation[0, 1])
    error = (closing_yaw - current + np.pi / 2) % np.pi - np.pi / 2
    return current + error


def _yaw_error(tcp_rotation: np.ndarray, closing_yaw: float) -> float:
    current = np.arctan2(tcp_rotation[1, 1], tcp_rotation[0, 1])
    return float(abs((closing_yaw - current + np.pi / 2) % np.pi - np.pi / 2))


def _rotation_toward(tcp_rotation: np.ndarray, closing_yaw: float) -> np.ndarray:
    """World-frame rotation delta (XYZ Euler, the action convention) toward the desired frame."""
    desired = _desired_rotation(_nearest_symmetric_yaw(tcp_rotation, closing_yaw))
    error = desired @ tcp_rotation.T
    euler = np.array(mat2euler(error, "rxyz"))
    norm = np.linalg.norm(euler)
    if norm > MAX_ROTATION:
        euler *= MAX_ROTATION / norm
    return euler


def success_rate(
    setting: str = "train",
    episodes: int = 50,
    horizon: int = 80,
    first_seed: int = 0,
    max_step: float = MAX_TRANSLATION,
    env_options: dict | None = None,
) -> float:
    """Expert success at the last of `horizon` steps, over seeds first_seed..first_seed+episodes-1."""
    import gymnasium as gym

    from rl2vla_jax.envs import SETTINGS
    from rl2vla_jax.envs.actions import CONTROL_MODE, openvla_to_controller

    # No rendering: the expert reads privileged state and success does not depend on pixels.
    env = gym.make(
        SETTINGS[setting].env_id,
        num_envs=1,
        obs_mode="state",
        control_mode=CONTROL_MODE,
        **(env_options or {}),
    )
    expert = ScriptedExpert(env, max_step)
    successes = 0
    try:
        for seed in range(first_seed, first_seed + episodes):
            env.reset(seed=seed)
            expert.reset()
            for _ in range(horizon):
                _, _, _, _, info = env.step(openvla_to_controller(expert.act()))
            successes += bool(info["success"][0])
    finally:
        env.close()
    return successes / episodes


def main() -> None:
    """python -m rl2vla_jax.envs.expert [--setting=train] [--episodes=50] [--horizon=80] [--first_seed=0]"""
    from absl import flags

    from rl2vla_jax import cli
    from rl2vla_jax.validation import check_choice

    # Defined here, not at import: collect_demos imports this module and has its own --setting.
    setting = flags.DEFINE_string("setting", "train", "setting of the 'ours' suite")
    episodes = flags.DEFINE_integer(
        "episodes", 50, "episodes (seeds first_seed, first_seed+1, ...)", lower_bound=1
    )
    horizon = flags.DEFINE_integer("horizon", 80, "steps per episode", lower_bound=1)
    first_seed = flags.DEFINE_integer("first_seed", 0, "seed of the first episode")

    def run(argv):
        del argv  # cli.run has refused positional arguments
        from rl2vla_jax.envs import SETTINGS

        check_choice("--setting", setting.value, SETTINGS)
        rate = success_rate(setting.value, episodes.value, horizon.value, first_seed.value)
        print(
            f"expert success on {setting.value}: {rate:.1%} over {episodes.value} episodes of {horizon.value} steps"
        )

    cli.run(run)


if __name__ == "__main__":
    main()
