"""Robot links outside the camera's view are skipped on CPU rendering, and the image stays the same."""

import numpy as np
import pytest

from rl2vla_jax.envs import SETTINGS
from rl2vla_jax.envs.actions import openvla_to_controller
from rl2vla_jax.envs.cpu_worker import make_single_env
from rl2vla_jax.envs.expert import ScriptedExpert
from rl2vla_jax.envs.view_culling import MARGIN_PX, boxes_outside_view

# A camera at the origin looking down +z (OpenCV axes), 64 x 64 px, focal length 50 px.
EXTRINSIC = np.hstack([np.eye(3), np.zeros((3, 1))])
INTRINSIC = np.array([[50.0, 0.0, 32.0], [0.0, 50.0, 32.0], [0.0, 0.0, 1.0]])


def outside(lo, hi):
    return bool(boxes_outside_view([[lo, hi]], EXTRINSIC, INTRINSIC, 64, 64, 0.01)[0])


def test_boxes_are_judged_one_by_one():
    boxes = [[[-0.1, -0.1, 1.0], [0.1, 0.1, 2.0]], [[2.0, -0.1, 1.0], [3.0, 0.1, 1.1]], [[-0.1, -0.1, 1.0], [0.1, 0.1, 1.5]]]
    np.testing.assert_array_equal(boxes_outside_view(boxes, EXTRINSIC, INTRINSIC, 64, 64, 0.01), [False, True, False])


def test_boxes_in_view_are_kept():
    assert not outside([-0.1, -0.1, 1.0], [0.1, 0.1, 2.0])  # in the middle of the image
    assert not outside([-10.0, -10.0, 1.0], [10.0, 10.0, 2.0])  # larger than the view
    assert not outside([-5.0, -0.1, 1.0], [-0.5, 0.1, 1.0])  # straddles the left border
    assert not outside([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])  # contains the camera


def test_boxes_out_of_view_are_skipped():
    assert outside([2.0, -0.1, 1.0], [3.0, 0.1, 1.1])  # right of the image (u >= 123 px)
    assert outside([-3.0, -0.1, 1.0], [-2.0, 0.1, 1.1])  # left
    assert outside([-0.1, 2.0, 1.0], [0.1, 3.0, 1.1])  # below
    assert outside([-0.1, -0.1, -2.0], [0.1, 0.1, -1.0])  # behind the camera


def test_a_box_within_the_margin_of_the_border_is_kept():
    # Its nearest corner projects to u = -1 px at z = 1: inside the margin, so it is drawn.
    edge = (-1.0 - 32.0) / 50.0
    assert MARGIN_PX > 1.0
    assert not outside([edge - 0.5, -0.1, 1.0], [edge, 0.1, 1.0])
    # 3 px beyond the border it is skipped.
    far = (-3.0 - 32.0) / 50.0
    assert outside([far - 0.5, -0.1, 1.0], [far, 0.1, 1.0])


def _image(unwrapped, cull: bool) -> np.ndarray:
    unwrapped.cull_out_of_view = cull
    return unwrapped._get_obs_sensor_data()["base_camera"]["rgb"][0].numpy().copy()


@pytest.mark.sim
@pytest.mark.parametrize("camera", ["close", "wide"])
def test_culling_leaves_every_frame_bit_identical(camera):
    env = make_single_env(SETTINGS["train"].env_id, 64, 40, env_options={"camera": camera, "layout": "narrow"})
    unwrapped = env.unwrapped
    expert = ScriptedExpert(env, 0.04)
    rng = np.random.default_rng(0)
    frames = skipped = 0
    try:
        for seed in (3, 4):
            env.reset(seed=seed)
            expert.reset()
            for _ in range(25):
                full, culled = _image(unwrapped, False), _image(unwrapped, True)
                np.testing.assert_array_equal(culled, full)
                culler = unwrapped._link_cullers["base_camera"]
                skipped += culler.hidden_last_capture
                frames += 1
                # After the capture every link is visible again (for videos and other cameras).
                assert all(body.visibility == 1.0 for body in culler.render_bodies)
                action = expert.act()
                action[:3] += rng.normal(0.0, 0.01, 3)  # off the expert's path as well
                env.step(openvla_to_controller(action))
    finally:
        env.close()
    # Not vacuous: links were skipped (close camera: ~3 of 11 per frame; wide: ~1).
    assert skipped >= frames // 2, (skipped, frames)
