"""Several episodes per env in one iteration: the episode plan, joining the parts, resume."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import film_evi, grpo
from rl2vla_jax.policy import episodes as episodes_lib
from rl2vla_jax.train import episode_plan, loop
from rl2vla_jax.validation import ConfigError


def test_group_ids_are_unique_per_round_and_process():
    ids = episode_plan.rollout_group_ids(num_envs=6, group_size=3, episodes_per_env=2, process=0)
    np.testing.assert_array_equal(ids, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    other = episode_plan.rollout_group_ids(num_envs=6, group_size=3, episodes_per_env=2, process=1)
    np.testing.assert_array_equal(other, ids + 4)
    np.testing.assert_array_equal(episode_plan.rollout_group_ids(4, 2, 1, 0), [0, 0, 1, 1])  # as before


def test_rounds_of_grpo_s_start_from_new_states():
    config = grpo.get_config("same_state")
    config.env.num_envs, config.grpo_group_size, config.rollout.episodes_per_env = 4, 2, 3
    rounds = [episode_plan.episode_seeds(config, 5, 2, k) for k in range(3)] + [
        episode_plan.episode_seeds(config, 6, 2, 0)
    ]
    firsts = [seeds[0] for seeds in rounds] + [seeds[2] for seeds in rounds]
    assert all(seeds[0] == seeds[1] and seeds[2] == seeds[3] for seeds in rounds)
    assert len(set(firsts)) == len(firsts)  # no state reused by another group, round or iteration


def _episodes(num_envs: int, offset: float, on_device: bool, dropped=None, frames=()):
    put = jnp.asarray if on_device else np.asarray
    horizon = 3
    steps = {
        "rewards": np.full((horizon, num_envs), offset, np.float32),
        "dones": np.zeros((horizon, num_envs), np.float32),
        "images": put(np.full((horizon, num_envs, 2, 2, 3), offset, np.uint8)),
        "tokens": put(np.full((horizon, num_envs, 7), offset, np.int32)),
        "token_log_probs": put(np.full((horizon, num_envs, 7), -offset, np.float32)),
        "values": put(np.full((horizon, num_envs), offset, np.float32)),
        "entropy": put(np.full((horizon, num_envs), offset, np.float32)),
        "descriptor": put(np.full((horizon, num_envs), offset, np.float32)),
    }
    return episodes_lib.Episodes(
        success=np.full(num_envs, offset > 1),
        success_once=np.full(num_envs, offset > 1),
        returns=np.full(num_envs, offset, np.float32),
        episode_length=np.full(num_envs, horizon),
        prompt_ids=np.full((num_envs, 5), offset, np.int32),
        prompt_mask=np.ones((num_envs, 5), bool),
        steps=steps,
        bootstrap_value=put(np.full(num_envs, offset, np.float32)),
        frames=list(frames),
        seconds={"simulator": offset, "policy": 1.0},
        dropped=dropped,
    )


@pytest.mark.parametrize("on_device", [False, True])
def test_concatenate_joins_envs_in_order(on_device):
    first = _episodes(2, 1.0, on_device, frames=[["frame"]])
    second = _episodes(2, 2.0, on_device, dropped=np.array([False, True]))
    both = episodes_lib.concatenate([first, second])
    np.testing.assert_array_equal(both.returns, [1, 1, 2, 2])
    np.testing.assert_array_equal(both.dropped, [False, False, False, True])
    assert both.seconds == {"simulator": 3.0, "policy": 2.0} and both.frames == [["frame"]]
    assert isinstance(both.steps["images"], jax.Array) == on_device  # device arrays stay on the device
    rollout = episodes_lib.to_rollout(both, episode_plan.rollout_group_ids(2, 1, 2, 0))
    assert rollout.images.shape == (3, 4, 2, 2, 3) and rollout.prompt_ids.shape == (3, 4, 5)
    np.testing.assert_array_equal(np.asarray(rollout.tokens)[0, :, 0], [1, 1, 2, 2])
    np.testing.assert_array_equal(np.asarray(rollout.bootstrap_value), [1, 1, 2, 2])
    np.testing.assert_array_equal(rollout.valid[0], [1, 1, 1, 0])
    np.testing.assert_array_equal(rollout.group_ids, [0, 1, 2, 3])
    stats = both.stats()  # the dropped episode is left out
    assert stats["return"] == pytest.approx(4 / 3) and stats["policy_entropy"] == pytest.approx(4 / 3)
    with pytest.raises(ValueError, match="only the first part may keep video frames"):
        episodes_lib.concatenate([first, _episodes(2, 2.0, on_device, frames=[["frame"]])])


def test_resume_refuses_a_changed_episodes_per_env(tmp_path):
    config = film_evi.get_config()
    config.rollout.episodes_per_env = 2
    loop.write_run_description(str(tmp_path), config)
    loop._check_same_rounds(str(tmp_path), config)  # the same value resumes
    config.rollout.episodes_per_env = 1
    with pytest.raises(ConfigError, match=r"episodes_per_env=1 differs from the 2 .*episodes_per_env=2"):
        loop._check_same_rounds(str(tmp_path), config)
    loop._check_same_rounds(str(tmp_path / "elsewhere"), config)  # no run.json: nothing to compare


def test_run_description_counts_every_episode_of_an_iteration(tmp_path):
    config = film_evi.get_config()
    config.env.num_envs, config.rollout.episodes_per_env, config.env.max_episode_steps = 3, 2, 5
    assert episode_plan.episodes_per_iteration(config) == 6
    assert episode_plan.samples_per_iteration(config) == 30
    loop.write_run_description(str(tmp_path), config)
    with open(tmp_path / loop.RUN_FILE) as f:
        assert json.load(f)["env_steps_per_iteration"] == 30 * jax.process_count()
