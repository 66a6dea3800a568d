"""Device-resident rollouts (`run_episodes` with an env whose observations are jax arrays, as the
gpu backend's): images, the act step's outputs and the recorded buffer never visit the host, the
actions are decoded on the device, and every value equals the host (numpy) path's for the same
seeds and rng. Run here on the JAX CPU device, with a stand-in env whose scene lives in JAX."""

import contextlib
import dataclasses
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import array as array_impl

from rl2vla_jax.envs import reach
from rl2vla_jax.envs.actions import FULL_RANGE_ACTION_STATS
from rl2vla_jax.envs.vector_env import Observation
from rl2vla_jax.policy import episodes as episodes_lib
from rl2vla_jax.policy.actions import ActionDecoder

SIZE = 17  # the camera's and the model's: no resize, so both paths feed the act step alike
NUM_ENVS, HORIZON, PROMPT_LEN = 6, 5, 3
SEEDS = [3, 1, 4, 15, 9, 2]
NETWORK_FLOATS = ("token_log_probs", "values", "entropy", "entropies", "descriptor")
DEVICE_FIELDS = ("images", "tokens", "token_log_probs", "values", "entropy", "entropies", "descriptor")

# The simulator's own reads (ManiSkill copies its per-env rewards and flags to the host with
# torch); everything else that reads a device array on the host inside `_no_host_reads` fails.
_simulator_reading = [False]


@contextlib.contextmanager
def _simulator_reads():
    _simulator_reading[0] = True
    try:
        with jax.transfer_guard_device_to_host("allow"):
            yield
    finally:
        _simulator_reading[0] = False


def _holds_device_array(args) -> bool:
    return any(
        isinstance(a, jax.Array) or (isinstance(a, (list, tuple)) and _holds_device_array(a)) for a in args
    )


@contextlib.contextmanager
def _no_host_reads(monkeypatch):
    """Any device -> host copy of a jax array fails. On an accelerator JAX's transfer guard
    sees them all; on the CPU it sees none (the device's buffers are host memory, which numpy
    reads in place), so the ways in are shut by hand as well: `_value` (device_get, float(),
    tolist(), __array__) and numpy's array constructors given a jax array."""

    def refuse(what):
        raise AssertionError(f"a device array was read on the host ({what})")

    value = array_impl.ArrayImpl._value

    def guarded_value(self):
        return value.fget(self) if _simulator_reading[0] else refuse("_value")

    with monkeypatch.context() as patch, jax.transfer_guard_device_to_host("disallow_explicit"):
        patch.setattr(array_impl.ArrayImpl, "_value", property(guarded_value))
        for name in (
            "asarray",
            "array",
            "stack",
            "concatenate",
            "where",
            "broadcast_to",
            "ascontiguousarray",
        ):
            original = getattr(np, name)

            def guarded(*args, _original=original, _name=name, **kwargs):
                if not _simulator_reading[0] and _holds_device_array(list(args) + list(kwargs.values())):
                    refuse(f"np.{_name}")
                return _original(*args, **kwargs)

            patch.setattr(np, name, guarded)
        yield


class DeviceReach:
    """A stand-in for the gpu backend: reach.py's scene (arm and target bars) in JAX on the
    device, observations as jax arrays, jax actions in. action[0] moves the arm 5x, action[1]
    2x; reward is the distance gained; an env terminates within 0.1 of the target. It also
    steps groups of envs (step_send / step_receive) so that pipelining can be checked."""

    def __init__(self):
        self.num_envs, self.max_episode_steps = NUM_ENVS, HORIZON
        self.pending = {}

    def reset(self, seed):
        keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seed))
        self.state = jax.vmap(lambda key: reach.reset(key, 1))(keys)
        self.state = jax.tree.map(lambda x: x[:, 0], self.state)
        return Observation(reach.render(self.state, SIZE), [f"task {s}" for s in seed])

    def step(self, actions):
        everyone = np.arange(self.num_envs)
        self.step_send(everyone, actions)
        return self.step_receive(everyone)

    def step_send(self, rows, actions) -> None:
        assert isinstance(actions, jax.Array) and actions.shape == (len(rows), 7), type(actions)
        self.pending[tuple(rows)] = actions

    def step_receive(self, rows):
        actions = self.pending.pop(tuple(rows))
        arm, target = self.state.arm[rows], self.state.target[rows]
        moved = jnp.clip(arm + 5.0 * actions[:, 0] + 2.0 * actions[:, 1], -1.0, 1.0)
        self.state = self.state.replace(arm=self.state.arm.at[rows].set(moved))
        reward = jnp.abs(arm - target) - jnp.abs(moved - target)
        near = jnp.abs(moved - target) < 0.1
        with _simulator_reads():
            reward, near = np.asarray(reward, np.float32), np.asarray(near, bool)
        images = reach.render(reach.ReachState(arm=moved, target=target), SIZE)
        info = {"success": near, "worker_crashed": np.zeros(len(rows), bool)}
        return Observation(images, [""] * len(rows)), reward, near, np.zeros(len(rows), bool), info


class HostReach(DeviceReach):
    """The same scene behind the cpu backend's interface: numpy observations, numpy actions."""

    def reset(self, seed):
        obs = super().reset(seed)
        return dataclasses.replace(obs, images=np.asarray(obs.images))

    def step_send(self, rows, actions) -> None:
        assert isinstance(actions, np.ndarray), type(actions)
        super().step_send(rows, jnp.asarray(actions))

    def step_receive(self, rows):
        obs, *rest = super().step_receive(rows)
        return (dataclasses.replace(obs, images=np.asarray(obs.images)), *rest)


@jax.jit
def scripted_act(policy_params, critic_params, images, prompt_ids, prompt_mask, rng, temperature):
    """The act step's outputs from the per-env keys, the images (the tokens follow the arm's
    column, so the loop is closed) and the prompts, as jax arrays."""
    pixels = images.reshape(len(images), -1).astype(jnp.float32)
    arm_column = jnp.argmax(images[:, 0, :, 1], axis=-1)
    draws = jax.vmap(lambda key: jax.random.randint(key, (7,), 0, 256))(rng)
    tokens = ((draws + 16 * arm_column[:, None]) % 256).astype(jnp.int32)
    entropies = tokens.astype(jnp.float32) / 256 + pixels.mean(-1, keepdims=True) / 1000
    token_log_probs = -entropies * temperature
    return {
        "tokens": tokens,
        "token_log_probs": token_log_probs,
        "log_prob": token_log_probs.sum(-1),
        "entropy": entropies.mean(-1),
        "entropies": entropies,
        "descriptor": entropies[:, 0],
        "value": pixels.std(-1) + prompt_ids[:, 0] * prompt_mask[:, -1],
    }


def _encode_prompts(tokenizer, texts, length, vocab_size):
    ids = np.arange(len(texts) * length, dtype=np.int32).reshape(len(texts), length)
    return ids, np.ones((len(texts), length), bool)


def _run(env, groups=1, keep_videos=2):
    decoder = ActionDecoder(types.SimpleNamespace(n_action_bins=256), FULL_RANGE_ACTION_STATS)
    actor = episodes_lib.Actor(env, scripted_act, None, decoder, SIZE, PROMPT_LEN, 448, groups)
    return episodes_lib.run_episodes(
        actor, None, None, SEEDS, jax.random.PRNGKey(7), 0.7, record=True, keep_videos=keep_videos
    )


def test_the_host_read_check_can_fail(monkeypatch):
    x = jnp.arange(11)
    reads = (lambda: np.asarray(x), lambda: jax.device_get(x), lambda: float(x[2]), lambda: np.stack([x, x]))
    with _no_host_reads(monkeypatch):
        for read in reads:
            with pytest.raises((AssertionError, RuntimeError)):
                read()
        with _simulator_reads():  # what the simulator may read of its own
            np.testing.assert_array_equal(np.asarray(x), np.arange(11))
    assert [np.asarray(read()).sum() for read in reads] == [55, 55, 2, 110]  # left as it was


def test_device_resident_rollout_stays_on_device_and_equals_the_host_rollout(monkeypatch):
    monkeypatch.setattr(episodes_lib, "encode_prompts", _encode_prompts)
    host = _run(HostReach())  # the cpu backend's path: its act outputs come to the host
    host_rollout = episodes_lib.to_rollout(host, np.arange(NUM_ENVS) // 2)
    with _no_host_reads(monkeypatch):
        device = _run(DeviceReach())
        rollout = episodes_lib.to_rollout(device, np.arange(NUM_ENVS) // 2)

    for key in DEVICE_FIELDS:
        assert isinstance(device.steps[key], jax.Array), key
        assert isinstance(host.steps[key], np.ndarray), key
        assert device.steps[key].shape == host.steps[key].shape, key
        # The same jitted act on the same inputs: bit for bit.
        np.testing.assert_array_equal(np.asarray(device.steps[key]), host.steps[key], err_msg=key)
    for field in ("images", "tokens", "token_log_probs", "values", "bootstrap_value"):
        assert isinstance(getattr(rollout, field), jax.Array), field
        np.testing.assert_array_equal(
            np.asarray(getattr(rollout, field)), getattr(host_rollout, field), err_msg=field
        )
    assert rollout.tokens.dtype == jnp.int32 and rollout.values.dtype == jnp.float32
    # The env's own host values cross; the actions were decoded in float32 on the device rather
    # than float64 on the host, which moves the arm by at most a float32 rounding.
    for field in ("rewards", "dones", "valid", "prompt_ids", "group_ids"):
        assert isinstance(getattr(rollout, field), np.ndarray), field
    np.testing.assert_allclose(rollout.rewards, host_rollout.rewards, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(rollout.dones, host_rollout.dones)
    np.testing.assert_array_equal(device.success, host.success)
    np.testing.assert_array_equal(device.episode_length, host.episode_length)
    untimed = lambda stats: {k: v for k, v in stats.items() if not k.startswith("time_")}
    assert untimed(device.stats()) == pytest.approx(untimed(host.stats()), abs=1e-6)
    for ours, theirs in zip(device.frames, host.frames, strict=True):
        assert all(isinstance(f, jax.Array) for f in ours)
        np.testing.assert_array_equal(np.stack([np.asarray(f) for f in ours]), np.stack(theirs))
    # Not a trivial rollout: the arms moved, rewards and tokens vary, some envs terminated.
    assert len(np.unique(host.steps["images"].reshape(HORIZON * NUM_ENVS, -1), axis=0)) > NUM_ENVS
    assert np.unique(host_rollout.rewards).size > 20  # (an arm at the clip earns 0)
    assert len({host.steps["tokens"][t, i].tobytes() for t in range(HORIZON) for i in range(NUM_ENVS)}) == 30
    assert 0 < host_rollout.dones.sum() < HORIZON * NUM_ENVS


def test_pipelined_device_rollout_equals_the_whole_batch(monkeypatch):
    # Three groups of two: each group's records are joined on the device in row order.
    monkeypatch.setattr(episodes_lib, "encode_prompts", _encode_prompts)
    with _no_host_reads(monkeypatch):
        whole, pipelined = _run(DeviceReach()), _run(DeviceReach(), groups=3, keep_videos=NUM_ENVS)
    assert whole.steps.keys() == pipelined.steps.keys()
    for key, value in whole.steps.items():
        assert type(pipelined.steps[key]) is type(value), key
        ours, theirs = np.asarray(pipelined.steps[key]), np.asarray(value)
        if key in NETWORK_FLOATS:  # XLA's reductions sum in an order set by the batch size
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0, err_msg=key)
        else:  # tokens, images, the env's values: bit for bit
            np.testing.assert_array_equal(ours, theirs, err_msg=key)
    assert isinstance(pipelined.bootstrap_value, jax.Array)
    np.testing.assert_allclose(
        np.asarray(pipelined.bootstrap_value), np.asarray(whole.bootstrap_value), rtol=1e-6
    )
    for k in range(2):
        np.testing.assert_array_equal(np.stack(pipelined.frames[k]), np.stack(whole.frames[k]))
    np.testing.assert_array_equal(pipelined.returns, whole.returns)
    assert len(np.unique(np.asarray(whole.steps["tokens"]))) > 100


def test_action_decoder_on_device_matches_the_host_decoder():
    stats = {"q01": [-0.03, -0.7, 0.2, -1.1, 0.0, -0.05, 0.0], "q99": [0.05, 0.9, 0.3, 1.3, 0.1, 0.07, 1.0]}
    stats["mask"] = [True] * 6 + [False]
    decoder = ActionDecoder(types.SimpleNamespace(n_action_bins=256), stats)
    bins = np.random.default_rng(0).integers(0, 256, (29, 7))
    bins[:2] = [[0] * 7, [255] * 7]  # both ends of the bin range
    on_device, on_host = decoder(jnp.asarray(bins)), decoder(bins)
    assert isinstance(on_device, jax.Array) and on_device.dtype == jnp.float32
    assert isinstance(on_host, np.ndarray) and on_host.dtype == np.float32
    np.testing.assert_allclose(np.asarray(on_device), on_host, rtol=1e-6, atol=1e-7)
    assert np.unique(on_host[:, 1]).size > 20  # the bins decode to distinct actions
