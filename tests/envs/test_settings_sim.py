"""Every setting resets, steps and renders on the CPU simulator (real SAPIEN rendering)."""

import gymnasium as gym
import numpy as np
import pytest

from rl2vla_jax.envs import SETTINGS
from rl2vla_jax.envs.actions import CONTROL_MODE, openvla_to_controller
from rl2vla_jax.envs.settings import MOVE_DISTANCE_MIN

IMAGE_SIZE = 64  # nothing checked here depends on the size
FIRST_FRAMES: dict[str, np.ndarray] = {}


def make(setting, obs_mode="rgb", **env_options):
    return gym.make(
        SETTINGS[setting].env_id,
        num_envs=1,
        obs_mode=obs_mode,
        control_mode=CONTROL_MODE,
        image_size=IMAGE_SIZE,
        **env_options,
    )


def frame(obs):
    return obs["sensor_data"]["base_camera"]["rgb"][0].numpy()


@pytest.mark.sim
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_setting_resets_steps_and_renders(setting):
    env = make(setting)
    try:
        obs, info = env.reset(seed=7)
        first = frame(obs)
        assert first.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and first.dtype == np.uint8
        assert first.std() > 10, "the frame should show a scene, not a flat colour"
        instruction = env.unwrapped.instructions[0]
        assert instruction and "{" not in instruction
        assert not bool(info["success"][0])
        lift = openvla_to_controller(np.array([0, 0, 0.05, 0, 0, 0, 1.0]))
        for _ in range(2):
            obs, reward, _, _, info = env.step(lift)
            assert frame(obs).shape == first.shape
            assert float(reward[0]) == 0.0
            assert {"success", "success_once"} <= set(info)
        again, _ = env.reset(seed=7)
        np.testing.assert_array_equal(frame(again), first)  # same seed, same first frame
        FIRST_FRAMES[setting] = first
    finally:
        env.close()


@pytest.mark.sim
def test_settings_that_change_the_picture_do():
    needed = [
        "id",
        "unseen_table",
        "dynamic_texture_weak",
        "dynamic_texture_strong",
        "image_noise_weak",
        "image_noise_strong",
        "unseen_objects",
        "unseen_receptacles",
    ]
    if not all(name in FIRST_FRAMES for name in needed):
        pytest.skip("needs the per-setting test above in the same session")
    reference = FIRST_FRAMES["id"].astype(np.float32)
    for name in needed[1:]:
        # Same seed, so only what the setting changes differs; objects are small at 64 px.
        changed = (np.abs(FIRST_FRAMES[name].astype(np.float32) - reference).max(-1) > 40).mean()
        assert changed > 0.003, f"{name} looks like the train distribution ({changed:.2%} of pixels differ)"
    # The strong noise departs further from the clean picture than the weak one.
    weak = np.abs(FIRST_FRAMES["image_noise_weak"] - reference).mean()
    strong = np.abs(FIRST_FRAMES["image_noise_strong"] - reference).mean()
    assert strong > weak
    np.testing.assert_array_equal(FIRST_FRAMES["unseen_instructions"], FIRST_FRAMES["id"])


@pytest.mark.sim
def test_object_is_moved_at_step_5():
    env = make("object_moved", obs_mode="state")
    try:
        env.reset(seed=3)
        unwrapped = env.unwrapped
        positions = [unwrapped.target_pose().p[0].numpy().copy()]
        hold = openvla_to_controller(np.array([0, 0, 0, 0, 0, 0, 1.0]))
        for _ in range(7):
            env.step(hold)
            positions.append(unwrapped.target_pose().p[0].numpy().copy())
        jumps = [np.linalg.norm(positions[i][:2] - positions[i - 1][:2]) for i in range(1, len(positions))]
        assert jumps[4] >= MOVE_DISTANCE_MIN  # the jump happens during step 5 ...
        assert max(jumps[:4] + jumps[5:]) < 0.01  # ... and only then
    finally:
        env.close()


@pytest.mark.sim
def test_unseen_positions_leave_the_train_region():
    from rl2vla_jax.envs.put_on_plate import TRAIN_OBJECT_RADIUS, WORKSPACE_CENTRE

    for setting, outside in (("train", False), ("unseen_positions", True)):
        env = make(setting, obs_mode="state")
        try:
            for seed in range(5):
                env.reset(seed=seed)
                xy = env.unwrapped.target_pose().p[0, :2].numpy()
                assert (np.linalg.norm(xy - WORKSPACE_CENTRE) > TRAIN_OBJECT_RADIUS + 1e-6) == outside
        finally:
            env.close()


@pytest.mark.sim
def test_narrow_layout_narrows_the_id_settings_only():
    from rl2vla_jax.envs.put_on_plate import LAYOUTS, WORKSPACE_CENTRE

    narrow = LAYOUTS["narrow"]
    spread = {}
    for setting in ("train", "id", "unseen_table"):
        env = make(setting, obs_mode="state", layout="narrow")
        try:
            distances = []
            for seed in range(12):
                env.reset(seed=seed)
                unwrapped = env.unwrapped
                distances.append(np.linalg.norm(unwrapped.target_pose().p[0, :2].numpy() - WORKSPACE_CENTRE))
                if setting != "unseen_table":
                    (x_low, x_high), (y_low, y_high) = narrow.receptacle_region
                    x, y = unwrapped.receptacle_position()[0, :2].numpy()
                    assert x_low - 1e-6 <= x <= x_high + 1e-6 and y_low - 1e-6 <= y <= y_high + 1e-6
            spread[setting] = max(distances)
        finally:
            env.close()
    assert spread["train"] <= narrow.object_radius + 1e-6 and spread["id"] <= narrow.object_radius + 1e-6
    assert spread["unseen_table"] > narrow.object_radius  # an OOD setting keeps the full layout


@pytest.mark.sim
def test_narrow_all_layout_narrows_target_and_receptacle_in_ood_settings_too():
    from rl2vla_jax.envs.put_on_plate import LAYOUTS, WORKSPACE_CENTRE

    narrow = LAYOUTS["narrow"]
    (x_low, x_high), (y_low, y_high) = narrow.receptacle_region
    for setting in ("unseen_table", "multi_object_unseen", "multi_receptacle"):
        env = make(setting, obs_mode="state", layout="narrow_all")
        try:
            for seed in range(6):
                env.reset(seed=seed)
                unwrapped = env.unwrapped
                plan = unwrapped.episode_plans[0]
                assert np.linalg.norm(np.asarray(plan["object_xy"][0]) - WORKSPACE_CENTRE) <= narrow.object_radius + 1e-6
                x, y = plan["receptacle_xy"][0]
                assert x_low - 1e-6 <= x <= x_high + 1e-6 and y_low - 1e-6 <= y <= y_high + 1e-6, setting
                start = unwrapped.target_pose().p[0, :2].numpy()
                for _ in range(3):  # overlapping placements would throw the target across the table
                    env.step(np.zeros(env.action_space.shape, np.float32))
                assert np.linalg.norm(unwrapped.target_pose().p[0, :2].numpy() - start) < 0.02, (setting, seed)
        finally:
            env.close()


@pytest.mark.sim
def test_close_camera_frames_the_workspace_tighter():
    """The same scene is bigger in the close camera: the object covers more pixels."""
    counts = {}
    for camera in ("wide", "close"):
        env = make("train", obs_mode="rgb+segmentation", camera=camera)
        try:
            obs, _ = env.reset(seed=3)
            segmentation = obs["sensor_data"]["base_camera"]["segmentation"][0, ..., 0].numpy()
            unwrapped = env.unwrapped
            target = unwrapped.object_actors[unwrapped.episode_plans[0]["target"]]
            target_ids = [k for k, obj in unwrapped.segmentation_id_map.items() if obj is target]
            counts[camera] = int(np.isin(segmentation, target_ids).sum())
        finally:
            env.close()
    assert counts["close"] > 1.5 * counts["wide"] > 0, counts


@pytest.mark.sim
def test_dynamic_texture_changes_every_frame_only_on_robot_and_objects():
    env = make("dynamic_texture_strong")
    try:
        obs, _ = env.reset(seed=2)
        hold = openvla_to_controller(np.array([0, 0, 0, 0, 0, 0, 1.0]))
        frames = [frame(obs)]
        for _ in range(2):
            obs, *_ = env.step(hold)
            frames.append(frame(obs))
    finally:
        env.close()
    clean = make("id")
    try:
        obs, _ = clean.reset(seed=2)
        clean_frames = [frame(obs)]
        for _ in range(2):
            obs, *_ = clean.step(hold)
            clean_frames.append(frame(obs))
    finally:
        clean.close()
    for t in (1, 2):
        textured = (np.abs(frames[t].astype(int) - frames[t - 1]).max(-1) > 30).mean()
        still = (np.abs(clean_frames[t].astype(int) - clean_frames[t - 1]).max(-1) > 30).mean()
        assert textured > 0.01 and textured > 5 * still  # the pattern is redrawn each frame
    # The table (no robot/object pixels) is left alone: most pixels equal the clean render.
    untouched = (np.abs(frames[0].astype(int) - clean_frames[0]).max(-1) <= 2).mean()
    assert untouched > 0.6
