import gymnasium as gym
import numpy as np
import pytest

from rl2vla_jax.envs import SETTINGS
from rl2vla_jax.envs.actions import CONTROL_MODE, openvla_to_controller
from rl2vla_jax.envs.expert import ScriptedExpert

EPISODES = 20
HORIZON = 40  # the expert finishes in ~15 steps; success must still hold at the last step


@pytest.mark.sim
def test_expert_succeeds_on_90_percent_of_train_episodes():
    # No rendering: the expert reads privileged state, and success does not depend on pixels.
    env = gym.make(SETTINGS["train"].env_id, num_envs=1, obs_mode="state", control_mode=CONTROL_MODE)
    expert = ScriptedExpert(env)
    successes = []
    try:
        for seed in range(EPISODES):
            env.reset(seed=10_000 + seed)
            expert.reset()
            for _ in range(HORIZON):
                _, _, _, _, info = env.step(openvla_to_controller(expert.act()))
            successes.append(bool(info["success"][0]))
    finally:
        env.close()
    assert np.mean(successes) >= 0.9, successes


@pytest.mark.sim
def test_potential_reward_sums_to_final_potential():
    env = gym.make(SETTINGS["train"].env_id, num_envs=1, obs_mode="state", control_mode=CONTROL_MODE)
    expert = ScriptedExpert(env)
    try:
        env.reset(seed=1)
        expert.reset()
        rewards = []
        for _ in range(25):
            _, reward, _, _, info = env.step(openvla_to_controller(expert.act()))
            rewards.append(float(reward[0]))
        assert bool(info["success"][0]) and bool(info["success_once"][0])
        # P = 0.1 ever grasped + 0.1 grasped 5 steps in a row + 1.0 on the plate after a grasp.
        assert sum(rewards) == pytest.approx(1.2, abs=1e-5)
    finally:
        env.close()


@pytest.mark.sim
def test_reach_shaping_adds_the_distance_closed_before_the_grasp():
    weight = 2.0
    env = gym.make(
        SETTINGS["train"].env_id, num_envs=1, obs_mode="state", control_mode=CONTROL_MODE, reach_shaping=weight
    )
    task, expert = env.unwrapped, ScriptedExpert(env)

    def distance() -> float:
        return float(np.linalg.norm((task.agent.tcp_pose.p - task.target_pose().p)[0].cpu().numpy()))

    try:
        for seed in (1, 2):  # the second episode checks that reset starts the shaping afresh
            env.reset(seed=seed)
            expert.reset()
            rewards, distances, grasped = [], [], []
            for _ in range(25):
                _, reward, _, _, info = env.step(openvla_to_controller(expert.act()))
                rewards.append(float(reward[0]))
                distances.append(distance())
                grasped.append(bool(info["ever_grasped"][0]))
            assert bool(info["success"][0])
            first_grasp = grasped.index(True)
            # The potential's differences telescope: from the first step's distance (no reward
            # for the initial state) to the last one before the grasp, then nothing.
            shaped = weight * (distances[0] - distances[first_grasp - 1])
            assert shaped > 0.1  # the expert closed >5 cm before grasping
            assert sum(rewards) == pytest.approx(1.2 + shaped, abs=1e-4)
            assert rewards[0] == pytest.approx(0.0, abs=1e-6)
    finally:
        env.close()


@pytest.mark.sim
def test_slow_expert_moves_at_most_max_step_and_still_succeeds():
    """The CPU experiment's demonstrations: 4 cm per step, mostly saturated actions."""
    env = gym.make(
        SETTINGS["train"].env_id, num_envs=1, obs_mode="state", control_mode=CONTROL_MODE, layout="narrow"
    )
    expert = ScriptedExpert(env, max_step=0.04)
    try:
        env.reset(seed=7)
        expert.reset()
        translations = []
        for _ in range(HORIZON):
            action = expert.act()
            translations.append(action[:3])
            _, _, _, _, info = env.step(openvla_to_controller(action))
        translations = np.abs(np.stack(translations))
        assert bool(info["success"][0])
        assert translations.max() == pytest.approx(0.04, abs=1e-6)  # saturated at some step, never above
        assert np.mean(translations.max(axis=1) > 0.039) > 0.2  # a good share of steps at full speed
    finally:
        env.close()
    with pytest.raises(ValueError, match="max_step=0.2 must be in"):
        ScriptedExpert(env, max_step=0.2)
