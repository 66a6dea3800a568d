"""Mesh and shardings on the 2 forced CPU devices: batches split over every device, params over
fsdp above `mesh.fsdp_min_size`, whole params for acting, one-line refusals. (Several processes:
tests/train/test_distributed.py.)"""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from rl2vla_jax import mesh as mesh_lib
from rl2vla_jax.validation import ConfigError


def _mesh(data, fsdp):
    return mesh_lib.make_mesh(data, fsdp, jax.devices()[: data * fsdp])


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "split": rng.normal(size=(11, 34)).astype(np.float32),  # 374 elements, axis 1 divisible by 2
        "small": rng.normal(size=(17,)).astype(np.float32),  # below the threshold
        "odd": rng.normal(size=(13, 29)).astype(np.float32),  # no axis divisible by 2
    }


@pytest.mark.parametrize("data,fsdp", [(2, 1), (1, 2)])
def test_batch_env_axis_is_split_over_data_and_fsdp(data, fsdp):
    mesh = _mesh(data, fsdp)
    batch = np.random.default_rng(1).normal(size=(3, 10, 7)).astype(np.float32)  # env axis 1
    placed = jax.device_put(batch, mesh_lib.env_axis_sharding(mesh, batch, env_axis=1))
    assert placed.sharding.spec == P(None, ("data", "fsdp"), None)
    shards = {(s.index[1].start, s.index[1].stop): np.asarray(s.data) for s in placed.addressable_shards}
    assert sorted(shards) == [(0, 5), (5, 10)]  # a distinct half on each device
    for (start, stop), value in shards.items():
        np.testing.assert_array_equal(value, batch[:, start:stop])


def test_fsdp_min_size_decides_which_params_are_split():
    mesh, params = _mesh(1, 2), _params()
    assert all(s.spec == P() for s in mesh_lib.param_sharding(mesh, params).values())  # default 2**18
    low = mesh_lib.param_sharding(mesh, params, min_size=100)
    assert (low["split"].spec, low["small"].spec, low["odd"].spec) == (P(None, "fsdp"), P(), P())
    assert all(s.spec == P() for s in mesh_lib.param_sharding(_mesh(2, 1), params, min_size=1).values())


def test_acting_copy_gathers_whole_params_onto_the_first_device():
    mesh, params = _mesh(1, 2), _params(2)
    placed = jax.device_put(params, mesh_lib.param_sharding(mesh, params, min_size=100))
    assert not placed["split"].sharding.is_fully_replicated
    copy = mesh_lib.acting_copy(mesh)(placed)
    for key, value in params.items():
        assert copy[key].devices() == {mesh.local_devices[0]}, key
        np.testing.assert_array_equal(np.asarray(copy[key]), value, err_msg=key)
    matvec = jax.jit(lambda p: p["split"].T @ p["odd"][:11, 0])  # a one-device program runs on it
    np.testing.assert_allclose(matvec(copy), params["split"].T @ params["odd"][:11, 0], rtol=1e-5)
    # One device: the params themselves, no copy.
    single = jax.device_put(params, jax.devices()[0])
    assert mesh_lib.acting_copy(_mesh(1, 1))(single) is single


def test_acting_copy_that_cannot_fit_is_refused_with_the_sizes():
    mesh, params = _mesh(1, 2), _params(3)
    placed = jax.device_put(params, mesh_lib.param_sharding(mesh, params, min_size=100))
    needed = 11 * 34 * 4  # only the split array is gathered: the others are already whole
    mesh_lib.check_acting_copy_fits(mesh, placed, free_bytes=needed)
    with pytest.raises(
        ConfigError, match=r"1\.46 KiB more, but .* has 1\.46 KiB free.*fsdp=2.*bfloat16"
    ) as err:
        mesh_lib.check_acting_copy_fits(mesh, placed, free_bytes=needed - 1)
    assert "\n" not in str(err.value)
    replicated = jax.device_put(params, mesh_lib.param_sharding(mesh, params))
    mesh_lib.check_acting_copy_fits(mesh, replicated, free_bytes=0)  # nothing to gather


def test_bad_mesh_and_batch_sizes_are_one_line_config_errors():
    with pytest.raises(ConfigError, match=r"config.mesh.data=3 x config.mesh.fsdp=1 .* 2 available"):
        mesh_lib.make_mesh(3, 1, jax.devices()[:2])
    mesh = _mesh(1, 2)
    mesh_lib.check_batch_split(mesh, 6, "config.env.num_envs")
    with pytest.raises(ConfigError, match=r"config.env.num_envs=5 .* 2 devices .* multiple of 2"):
        mesh_lib.check_batch_split(mesh, 5, "config.env.num_envs")
