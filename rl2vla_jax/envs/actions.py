"""The policy's 7-D action (OpenVLA/Bridge convention) and ManiSkill's `pd_ee_delta_pose` action.

OpenVLA predicts 256-bin tokens, decodes them to [-1, 1] and un-normalises them with the
dataset's q01/q99 statistics into physical units. The environment takes those physical units:

  policy action a = [dx, dy, dz, droll, dpitch, dyaw, gripper]
    dx, dy, dz            metres, robot base frame (axes = world axes), |.| <= 0.1 per step
    droll, dpitch, dyaw   radians, XYZ Euler angles (intrinsic, = R_x R_y R_z) of a rotation
                          applied about the end-effector in world-aligned axes; norm <= 0.1
    gripper               1 = open, 0 = closed (Bridge's convention); values in between
                          command a proportional finger opening

ManiSkill's Panda `pd_ee_delta_pose` controller takes a normalised action in [-1, 1]^7:
position = 0.1 * a[:3] metres; rotation = rot_lower * clip_norm(a[3:6], 1) with
rot_lower = -0.1 rad (the controller multiplies by the negative lower bound, so the sign flips);
gripper -1 = closed (-0.01 m finger target), +1 = open (0.04 m).
"""

from __future__ import annotations

import numpy as np

CONTROL_MODE = "pd_ee_delta_pose"
MAX_TRANSLATION = 0.1  # metres per step (controller pos_upper)
MAX_ROTATION = 0.1  # radians per step (|controller rot_lower|)
ROTATION_SCALE = -0.1  # the controller's rot_lower, by which it multiplies the normalised rotation

# Action statistics for a policy that has none (a random init): its [-1, 1] spans the
# controller's full range (metres / radians per step), the gripper [0, 1].
FULL_RANGE_KEY = "full_range"
FULL_RANGE_ACTION_STATS = {
    "q01": [-MAX_TRANSLATION] * 3 + [-MAX_ROTATION] * 3 + [0.0],
    "q99": [MAX_TRANSLATION] * 3 + [MAX_ROTATION] * 3 + [1.0],
    "mask": [True] * 7,
}


def openvla_to_controller(action: np.ndarray) -> np.ndarray:
    """[..., 7] physical policy action -> [..., 7] normalised `pd_ee_delta_pose` action."""
    action = np.asarray(action, dtype=np.float32)
    out = np.empty_like(action)
    out[..., :3] = np.clip(action[..., :3] / MAX_TRANSLATION, -1.0, 1.0)
    out[..., 3:6] = action[..., 3:6] / ROTATION_SCALE  # the controller clips the norm to 1
    out[..., 6] = np.clip(2.0 * action[..., 6] - 1.0, -1.0, 1.0)
    return out
