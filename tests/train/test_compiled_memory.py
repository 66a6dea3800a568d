"""Memory by compilation (benchmarks/memory_7b.py's code path) on the tiny config: the
compiled argument bytes equal the bytes of the abstract state and rollout each device holds,
fsdp splits them, remat trades temporaries, and the CPU's f32 copies of bf16 weights are found."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import film_evi
from rl2vla_jax.train import compiled_memory, overhead

MINIBATCH = 2  # even: the 2-device case splits it


def _per_device_bytes(tree, shardings=None) -> int:
    """Bytes one device holds of `tree`: whole leaves, or the shard `shardings` gives it."""
    leaves = jax.tree.leaves(tree)
    shapes = (
        [leaf.shape for leaf in leaves]
        if shardings is None
        else [s.shard_shape(leaf.shape) for leaf, s in zip(leaves, jax.tree.leaves(shardings))]
    )
    return sum(int(np.prod(shape)) * leaf.dtype.itemsize for leaf, shape in zip(leaves, shapes))


def _config():
    config = film_evi.get_config()
    config.unlock()
    config.model.param_dtype = "bfloat16"
    config.mesh.fsdp_min_size = 2**10  # split the tiny model's kernels too
    return config


def test_cpu_upcast_bytes_counts_the_hoisted_f32_copy_of_scan_stacked_bf16_weights():
    x = jax.ShapeDtypeStruct((5, 13), jnp.bfloat16)
    w = jax.ShapeDtypeStruct((7, 13, 13), jnp.bfloat16)

    def layers(x, w):
        return jax.lax.scan(lambda h, wl: (jnp.tanh(h @ wl), None), x, w)[0]

    compiled = jax.jit(layers).lower(x, w).compile()
    assert compiled_memory.cpu_upcast_bytes(compiled) == 4 * 7 * 13 * 13
    as_f32 = jax.jit(layers).lower(*(jax.ShapeDtypeStruct(a.shape, jnp.float32) for a in (x, w))).compile()
    assert compiled_memory.cpu_upcast_bytes(as_f32) == 0


def test_fits_leaves_a_tenth_of_the_gpu_free_and_bounds_decide_the_verdict():
    gib = compiled_memory.GIB
    assert compiled_memory.fits(72 * gib, 80) and not compiled_memory.fits(72 * gib + 1, 80)
    assert compiled_memory.fits(36 * gib, 40) and not compiled_memory.fits(37 * gib, 40)
    assert compiled_memory.verdict(30 * gib, 70 * gib, 80) == "yes"
    assert compiled_memory.verdict(30 * gib, 73 * gib, 80) == "unknown"
    assert compiled_memory.verdict(73 * gib, 99 * gib, 80) == "no"


@pytest.mark.slow
def test_tiny_update_and_policy_memory_by_compilation():
    config = _config()
    report = compiled_memory.measure(config, (1, 2), (MINIBATCH,), ("full",), policy_envs=5)
    single, split = report["update"]
    step = compiled_memory.one_step_config(config, MINIBATCH, "full")
    *_, state, rollout = overhead.build_arm(step, step.critic.name, 1, MINIBATCH)
    # jit drops arguments the step never reads: PPO's update never reads the GRPO group ids
    assert single["argument"] == _per_device_bytes((state, rollout.replace(group_ids=None)))
    # fsdp=2: each device holds its shard of the state and of the rollout's env axis
    from rl2vla_jax import mesh as mesh_lib

    mesh = mesh_lib.make_mesh(1, 2, jax.devices()[:2])
    state_sharding = mesh_lib.param_sharding(mesh, state, config.mesh.fsdp_min_size)
    assert split["argument"] < single["argument"]
    assert split["argument"] >= _per_device_bytes(state, state_sharding)
    for row in (single, split):
        assert row["total"] == row["argument"] + row["output"] + row["temp"] - row["alias"]
        # bf16 weights: the CPU backend's f32 copies are found, and are part of temp
        assert 0 < row["cpu_f32_copies"] <= row["temp"]
        assert row["lower_bound"] == row["total"] - row["cpu_f32_copies"]
        assert row["fits_80gb"] == row["fits_40gb"] == "yes"
    for key in ("total", "lower_bound"):
        assert single[f"rollout_device0_{key}"] == report["policy"][key]
        assert split[f"rollout_device0_{key}"] == split["argument"] + report["policy"][key]

    no_remat = compiled_memory.update_memory(config, jax.devices()[:1], MINIBATCH, "none")
    assert no_remat["argument"] == single["argument"]
    assert no_remat["temp"] > single["temp"]  # full remat saves nothing inside a layer

    policy = report["policy"]
    size, prompt_len = 28, config.model.max_prompt_tokens
    inputs = 5 * size * size * 3 + 5 * prompt_len * (4 + 1) + 2 * 4 + 4  # images, ids, mask, key, temperature
    assert policy["argument"] == _per_device_bytes((state.policy_params, state.critic)) + inputs
    assert policy["num_envs"] == 5 and 0 < policy["cpu_f32_copies"] <= policy["temp"]
    table = compiled_memory.markdown_table(report)
    assert table.count("\n") == 1 + len(report["update"])
