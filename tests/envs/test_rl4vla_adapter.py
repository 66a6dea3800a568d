"""The `rl4vla` suite's adapter against a stand-in of the fork's env class: the fork's assets
cannot be downloaded here, so the stand-in mimics its interface (gen-robot/RL4VLA,
ManiSkill/.../bridge_dataset_eval/put_on_in_scene_multi.py): reset options obj_set and
episode_id, the "3rd_view_camera" 640x480 rgb, get_language_instruction(), and the info keys
success / is_src_obj_grasped / consecutive_grasp."""

import numpy as np
import pytest
import torch

from rl2vla_jax.envs import rl4vla, suites, vector_env

H, W = 480, 640
NUM_ENVS = 3


class StandInForkEnv:
    """Records what the adapter passes; the episode id decides the image and the instruction."""

    def __init__(self, env_id, num_envs, max_episode_steps, **make_kwargs):
        self.env_id, self.num_envs, self.make_kwargs = env_id, num_envs, make_kwargs
        self.unwrapped = self
        self.device = torch.device("cpu")
        self.resets, self.actions = [], []
        self.grasp_plan = []  # per step: (is_src_obj_grasped, consecutive_grasp, success) [B] each

    def _obs(self):
        ids = self.episode_id.numpy()
        rgb = torch.from_numpy((ids[:, None, None, None] % 251 + np.zeros((1, H, W, 3))).astype(np.uint8))
        return {"sensor_data": {rl4vla.CAMERA: {"rgb": rgb}, "other_camera": {"rgb": rgb * 0}}}

    def reset(self, seed=None, options=None):
        self.resets.append({"seed": seed, "options": dict(options)})
        self.episode_id = options["episode_id"].reshape(self.num_envs)
        return self._obs(), {}

    def get_language_instruction(self):
        return [f"put object {int(i) % 7} on the plate" for i in self.episode_id]

    @property
    def instructions(self):  # our own tasks' attribute; the fork has none
        raise AttributeError("the fork has no `instructions`")

    def step(self, action):
        self.actions.append(action.clone())
        grasped, consecutive, success = self.grasp_plan[len(self.actions) - 1]
        info = {
            "is_src_obj_grasped": torch.tensor(grasped),
            "consecutive_grasp": torch.tensor(consecutive),
            "success": torch.tensor(success),
        }
        return (
            self._obs(),
            torch.zeros(self.num_envs),
            torch.zeros(self.num_envs, dtype=torch.bool),
            None,
            info,
        )

    def close(self):
        self.closed = True


def _stand_in(env_id, num_envs, max_episode_steps, backend):
    return StandInForkEnv(env_id, num_envs, max_episode_steps, backend=backend)


@pytest.fixture
def adapter():
    entry = suites.SUITES["rl4vla"]["unseen_objects"]
    return rl4vla.Rl4vlaVectorEnv(entry, NUM_ENVS, max_episode_steps=2, seed=5, make_env=_stand_in)


def test_suite_ids_follow_rl4vla_readme():
    table = suites.SUITES["rl4vla"]
    assert (table["id"].env_id, table["id"].options) == ("PutOnPlateInScene25Carrot-v1", {"obj_set": "train"})
    assert table["object_moved"].env_id == "PutOnPlateInScene25PositionChangeTo-v1"
    assert (table["train"].env_id, table["train"].options) == (
        "PutOnPlateInScene25Main-v3",
        {"obj_set": "train"},
    )
    test_ids = {(e.env_id, e.options["obj_set"]) for e in table.values() if e.split == "test"}
    assert len(test_ids) == 16  # the README's 16 evaluation settings, each once


def test_reset_passes_obj_set_and_episode_ids_reads_the_forks_camera_and_instructions(adapter):
    obs = adapter.reset(seed=[11, 11, 12])
    call = adapter.env.resets[-1]
    assert call["options"]["obj_set"] == "test" and call["seed"] == [11, 11, 12]
    ids = call["options"]["episode_id"].numpy()
    assert ids[0] == ids[1] != ids[2]  # equal seeds, equal initial states (GRPO (s))
    np.testing.assert_array_equal(ids, rl4vla.episode_ids([11, 11, 12]))
    assert obs.images.shape == (NUM_ENVS, H, W, 3) and obs.images.dtype == np.uint8
    np.testing.assert_array_equal(obs.images[:, 0, 0, 0], ids % 251)
    assert obs.instructions == [f"put object {int(i) % 7} on the plate" for i in ids]
    assert adapter.env.env_id == "PutOnPlateInScene25Carrot-v1"


def test_step_sends_rl4vla_actions_and_rewards_its_potential_difference(adapter):
    adapter.reset()
    np.testing.assert_array_equal(adapter.env.resets[-1]["seed"], [5, 6, 7])
    adapter.env.grasp_plan = [
        ([True, False, True], [False, False, False], [False, False, False]),
        ([True, False, False], [True, False, False], [True, True, False]),
    ]
    physical = np.array(
        [
            [0.01, -0.02, 0.03, 0.1, -0.2, 0.3, 0.9],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2],
            [1, 2, 3, 4, 5, 6, 0.5],
        ],
        np.float32,
    )
    _, reward, terminated, truncated, info = adapter.step(physical)
    sent = adapter.env.actions[-1].numpy()
    np.testing.assert_array_equal(sent[:, :6], physical[:, :6])  # physical units, as RL4VLA sends them
    np.testing.assert_array_equal(sent[:, 6], [1.0, -1.0, -1.0])  # open iff > 0.5
    np.testing.assert_allclose(reward, [0.1, 0.0, 0.1], atol=1e-7)
    assert not terminated.any() and not truncated.any()
    _, reward, _, truncated, info = adapter.step(physical)
    # env 0: grasped + 5 steps + success = 1.2 (from 0.1); env 1: success without grasp = 0;
    # env 2: let go = 0 (from 0.1).
    np.testing.assert_allclose(reward, [1.1, 0.0, -0.1], atol=1e-6)
    assert truncated.all() and info["success"].tolist() == [True, True, False]
    assert info["is_grasped"].tolist() == [True, False, False]


def test_make_vector_env_routes_the_rl4vla_suite_to_the_adapter(monkeypatch):
    made = {}

    def fake_make(env_id, num_envs, max_episode_steps, backend):
        made.update(env_id=env_id, num_envs=num_envs, backend=backend)
        return StandInForkEnv(env_id, num_envs, max_episode_steps)

    monkeypatch.setattr(suites, "rl4vla_available", lambda: True)
    monkeypatch.setattr(vector_env, "require_vulkan", lambda: None)
    monkeypatch.setattr(rl4vla, "_make_fork_env", fake_make)
    env = vector_env.make_vector_env(
        "object_moved", NUM_ENVS, backend="gpu", max_episode_steps=80, suite="rl4vla"
    )
    assert isinstance(env, rl4vla.Rl4vlaVectorEnv)
    assert made == {
        "env_id": "PutOnPlateInScene25PositionChangeTo-v1",
        "num_envs": NUM_ENVS,
        "backend": "gpu",
    }


def test_the_fork_env_is_made_as_rl4vla_makes_it(monkeypatch):
    import gymnasium as gym

    calls = []
    monkeypatch.setattr(gym, "make", lambda *args, **kwargs: calls.append((args, kwargs)))
    rl4vla._make_fork_env("PutOnPlateInScene25Main-v3", 64, 80, "gpu")
    ((args, kwargs),) = calls
    assert args == ("PutOnPlateInScene25Main-v3",)
    assert kwargs == {
        "num_envs": 64,
        "obs_mode": "rgb+segmentation",
        "control_mode": "arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos",
        "sim_backend": "gpu",
        "sim_config": {"sim_freq": 500, "control_freq": 5},
        "max_episode_steps": 80,
        "sensor_configs": {"shader_pack": "default"},
    }


def test_without_the_fork_the_suite_is_one_clear_error():
    if suites.rl4vla_available():
        pytest.skip("RL4VLA's fork is installed here")
    with pytest.raises(suites.Rl4vlaUnavailable, match="RL4VLA's ManiSkill fork"):
        vector_env.make_vector_env("train", 2, suite="rl4vla")
