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


def env_axis_sharding(mesh: Mesh, tree, env_axis: int):
    """Split every array of a batch along its env axis over `data` (axis 1 of [T, B, ...])."""

    def rule(leaf):
        if leaf.ndim <= env_axis:
            return replicated(mesh)
        spec = [None] * leaf.ndim
        spec[env_axis] = "data"
        return NamedSharding(mesh, P(*spec))

    return jax.tree.map(rule, tree)
