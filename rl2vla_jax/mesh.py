"""Device mesh and shardings: one code path from 1 CPU to a TPU pod.

Mesh axes: `data` (the rollout's env axis is split over it) and `fsdp` (large parameters and
their optimizer moments are split over it, for 7B). Built with explicit Auto axis types so
ordinary code on sharded arrays needs no sharding annotations.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

FSDP_MIN_SIZE = 2**18  # smaller arrays are replicated: splitting them costs more than it saves


def make_mesh(data: int = -1, fsdp: int = 1, devices=None) -> Mesh:
    devices = list(devices if devices is not None else jax.devices())
    count = len(devices)
    if fsdp == -1:
        fsdp = count // (data if data > 0 else 1)
    if data == -1:
        data = count // fsdp
    if data * fsdp != count:
        raise ValueError(f"mesh data={data} x fsdp={fsdp} does not match the {count} available devices")
    return Mesh(
        np.array(devices).reshape(data, fsdp), ("data", "fsdp"), axis_types=(jax.sharding.AxisType.Auto,) * 2
    )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def param_sharding(mesh: Mesh, tree):
    """Split each large array's biggest axis divisible by the fsdp size; replicate the rest."""
    fsdp = mesh.shape["fsdp"]

    def rule(leaf):
        shape = getattr(leaf, "shape", ())
        if fsdp == 1 or np.prod(shape, dtype=np.int64) < FSDP_MIN_SIZE:
            return replicated(mesh)
        for axis in np.argsort(shape)[::-1]:
            if shape[axis] % fsdp == 0:
                spec = [None] * len(shape)
                spec[axis] = "fsdp"
                return NamedSharding(mesh, P(*spec))
        return replicated(mesh)

    return jax.tree.map(rule, tree)


def env_axis_sharding(mesh: Mesh, tree, env_axis: int | None = None):
    """Split every array of a batch along its env axis over `data`. The axis is `env_axis`, or,
    for a pytree with a `env_axes()` method (update.Rollout), whatever that says per field."""
    axes = tree.env_axes() if env_axis is None else jax.tree.map(lambda _: env_axis, tree)

    def rule(leaf, axis):
        spec = [None] * leaf.ndim
        spec[axis] = "data"
        return NamedSharding(mesh, P(*spec))

    return jax.tree.map(rule, tree, axes)


def global_batch(tree, shardings):
    """Host arrays -> global arrays laid out by `shardings`. With several processes each one
    contributes its own envs' data (its slice of the env axis), as on a multi-host pod."""
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)
    return jax.tree.map(
        lambda x, s: jax.make_array_from_process_local_data(s, np.asarray(x)), tree, shardings
    )


def local_copy(tree):
    """A replicated global pytree as arrays on this process's first device (for acting on
    this process's envs; needs params replicated, i.e. fsdp = 1, when multi-process)."""
    if jax.process_count() == 1:
        return tree
    return jax.tree.map(lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree)


def initialize_distributed(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None
):
    """Multi-host start-up. With no arguments JAX detects SLURM, Open MPI, k8s and TPU pods;
    explicit values serve e.g. several processes on one machine. CPU uses gloo collectives."""
    if jax.config.jax_platforms in (None, "", "cpu") or "cpu" in str(jax.config.jax_platforms):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {}
    if coordinator_address:
        kwargs = {
            "coordinator_address": coordinator_address,
            "num_processes": num_processes,
            "process_id": process_id,
        }
    jax.distributed.initialize(**kwargs)
