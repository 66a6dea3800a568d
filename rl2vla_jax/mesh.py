"""Device mesh and shardings: one code path from 1 CPU to a TPU pod.

Mesh axes: `data` and `fsdp`. Every batch (the rollout's env axis, SFT's batch axis) is split
over both, so each device holds a distinct slice; large parameters and their optimizer
moments are split over `fsdp` as well (for 7B), and gathered where a whole copy is needed
(acting). Built with explicit Auto axis types so ordinary code on sharded arrays needs no
sharding annotations.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rl2vla_jax.validation import ConfigError

# Default of config.mesh.fsdp_min_size: splitting smaller arrays costs more than it saves.
FSDP_MIN_SIZE = 2**18
BATCH_AXES = ("data", "fsdp")  # a batch is split over every device of the mesh


def make_mesh(data: int = -1, fsdp: int = 1, devices=None) -> Mesh:
    # Each process's devices are consecutive in the mesh, so the batch slices a process holds
    # are one block of the env axis: the block of its own envs (see global_batch).
    devices = sorted(devices if devices is not None else jax.devices(), key=lambda d: (d.process_index, d.id))
    count = len(devices)
    if fsdp == -1:
        fsdp = count // (data if data > 0 else 1)
    if data == -1:
        data = count // fsdp
    if data * fsdp != count:
        raise ConfigError(
            f"config.mesh.data={data} x config.mesh.fsdp={fsdp} does not match the {count} available devices"
        )
    return Mesh(
        np.array(devices).reshape(data, fsdp), ("data", "fsdp"), axis_types=(jax.sharding.AxisType.Auto,) * 2
    )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def param_sharding(mesh: Mesh, tree, min_size: int = FSDP_MIN_SIZE):
    """Split each array of >= `min_size` elements along its biggest axis divisible by the fsdp
    size; replicate the rest."""
    fsdp = mesh.shape["fsdp"]

    def rule(leaf):
        shape = getattr(leaf, "shape", ())
        if fsdp == 1 or np.prod(shape, dtype=np.int64) < min_size:
            return replicated(mesh)
        for axis in np.argsort(shape, kind="stable")[::-1]:
            if shape[axis] % fsdp == 0:
                spec = [None] * len(shape)
                spec[axis] = "fsdp"
                return NamedSharding(mesh, P(*spec))
        return replicated(mesh)

    return jax.tree.map(rule, tree)


def env_axis_sharding(mesh: Mesh, tree, env_axis: int | None = None):
    """Split every array of a batch along its env axis over all devices (`data` x `fsdp`). The
    axis is `env_axis`, or, for a pytree with a `env_axes()` method (Rollout), whatever that
    says per field."""
    axes = tree.env_axes() if env_axis is None else jax.tree.map(lambda _: env_axis, tree)

    def rule(leaf, axis):
        spec = [None] * leaf.ndim
        spec[axis] = BATCH_AXES
        return NamedSharding(mesh, P(*spec))

    return jax.tree.map(rule, tree, axes)


def _env_axis(sharding: NamedSharding) -> int:
    return next(i for i, names in enumerate(sharding.spec) if names == BATCH_AXES)


def check_batch_split(mesh: Mesh, local_size: int, what: str) -> None:
    """One-line refusal unless this process's `local_size` batch rows split evenly over its
    devices (every device must hold the same number of rows)."""
    local = len(mesh.local_devices)
    if local_size % local:
        raise ConfigError(
            f"{what}={local_size} rows per process do not split over this process's {local} devices "
            f"of the mesh {dict(mesh.shape)}; use a multiple of {local}"
        )


def place(tree, shardings):
    """Values every process holds alike (same seed, same checkpoint) -> global arrays laid out by
    `shardings`; each process copies in only the slices its devices hold (no collectives)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def one(x, sharding):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x  # already laid out, e.g. restored from a checkpoint into this sharding
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(one, tree, shardings)


def global_batch(tree, shardings):
    """Host arrays -> global arrays laid out by `shardings` (from env_axis_sharding). With several
    processes each one contributes its own envs' data: process p's rows become the p-th block
    of the global env axis, the order a 1-process run over all envs would have."""
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def place(x, sharding):
        x = np.asarray(x)
        axis = _env_axis(sharding)
        global_shape = list(x.shape)
        global_shape[axis] *= jax.process_count()
        _check_process_block(sharding, tuple(global_shape), axis, x.shape[axis])
        return jax.make_array_from_process_local_data(sharding, x, tuple(global_shape))

    return jax.tree.map(place, tree, shardings)


def _check_process_block(sharding, global_shape, axis: int, rows: int) -> None:
    """The env-axis slices of this process's devices must be exactly rows [p*rows, (p+1)*rows):
    otherwise its data would land in other envs' places (and GAE, groups and minibatches would
    mix processes up)."""
    indices = sharding.addressable_devices_indices_map(global_shape).values()
    blocks = sorted({(index[axis].start or 0, index[axis].stop or global_shape[axis]) for index in indices})
    first = jax.process_index() * rows
    covered = first
    for start, stop in blocks:
        if start != covered:
            break
        covered = stop
    if covered != first + rows:
        raise ConfigError(
            f"process {jax.process_index()} holds env rows {blocks} of the global batch, not the block "
            f"[{first}, {first + rows}) of its own envs: its devices are not consecutive in the mesh"
        )


def _sharded(x) -> bool:
    return isinstance(x, jax.Array) and not x.sharding.is_fully_replicated


def acting_copy(mesh: Mesh):
    """fn(tree) -> the same params as whole arrays on this process's first device, for acting on
    its envs. Sharded (fsdp) arrays are all-gathered once (one jitted identity with replicated
    outputs); replicated arrays are just this device's buffer (no copy). One device: the tree."""
    gather = jax.jit(lambda tree: tree, out_shardings=replicated(mesh))
    device = mesh.local_devices[0]

    def on_device(x):
        if not isinstance(x, jax.Array):
            return x
        return next(shard.data for shard in x.addressable_shards if shard.device == device)

    def copy(tree):
        if mesh.size == 1:
            return tree
        if any(_sharded(x) for x in jax.tree.leaves(tree)):
            tree = gather(tree)
        return jax.tree.map(on_device, tree)

    return copy


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes} B"


def check_acting_copy_fits(mesh: Mesh, tree, free_bytes: int | None = None) -> None:
    """One-line refusal when the whole-params copy acting needs (acting_copy) cannot fit next to
    the sharded train state: the all-gather puts every fsdp-split array whole on each device.
    `free_bytes` is what this process's first device has free; None asks the device (GPUs and
    TPUs report it; CPUs do not, and pass unchecked). Acting's activations come on top."""
    split = [x for x in jax.tree.leaves(tree) if _sharded(x)]
    extra = sum(x.size * x.dtype.itemsize for x in split)
    if extra == 0:
        return
    device = mesh.local_devices[0]
    if free_bytes is None:
        stats = device.memory_stats() or {}
        if "bytes_limit" not in stats:
            return
        free_bytes = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    if extra > free_bytes:
        float32 = any(x.dtype == np.float32 for x in split)
        raise ConfigError(
            f"acting needs the fsdp-split params whole on each device: {_size(extra)} more, but {device} "
            f"has {_size(free_bytes)} free; spread the train state over more devices (config.mesh.fsdp="
            f"{mesh.shape['fsdp']} now)"
            + (" or halve the params with config.model.param_dtype=bfloat16" if float32 else "")
        )


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
