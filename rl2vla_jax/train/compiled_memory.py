"""Memory by compilation: XLA's memory analysis of the update step and the policy step,
lowered and compiled ahead of time on abstract shapes (nothing allocated), per device of a mesh.

The update is the one the training loop runs (`update.update`, state donated, outputs laid
out as the state), at one optimizer step on one minibatch: a rollout of `minibatch` envs x 1
step with ppo.minibatch_size = minibatch, no accumulation, one epoch. With grad_accum_steps > 1
the accumulation is a `scan` over micro-batches, so its activations are those of one
minibatch: the figure holds for `:paper`'s 8 x 20 accumulation too. The policy step is
`policy.act` on one device: acting always runs on a whole-params copy on each process's first
device (`mesh.acting_copy`), whatever the train state's mesh.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np

from rl2vla_jax import checkpoints
from rl2vla_jax import mesh as mesh_lib
from rl2vla_jax.policy.act import make_act
from rl2vla_jax.train import overhead

GIB = 2**30
GPU_GIB = (80, 40)  # A100/H100 80 GB, A100 40 GB


def one_step_config(config, minibatch: int, remat: str):
    """`config` (unlocked copy) reduced to one optimizer step on one minibatch, with `remat`."""
    config = config.copy_and_resolve_references()
    config.unlock()
    config.model.remat = remat
    config.env.num_envs, config.env.max_episode_steps = minibatch, 1
    config.rollout.episodes_per_env = 1
    config.ppo.minibatch_size, config.ppo.grad_accum_steps, config.ppo.epochs = minibatch, 1, 1
    return config


# An f32 convert computed in the entry computation (outside every loop) of the compiled HLO.
_ENTRY_UPCAST = re.compile(r"^\s*%\S*convert\S* = f32\[([\d,]*)\]")


def cpu_upcast_bytes(compiled) -> int:
    """Bytes of the f32 arrays the CPU backend converts before any loop: it has no bf16 dot, so
    it converts the operands, and hoists the convert of each scan-stacked weight out of the
    layer loop (all layers at once, 2x their bf16 bytes, in `temp`; the update converts them
    once for the forward loop and again for the backward one). A GPU multiplies bf16 natively
    and makes no such copies. Not all of them need be live at once, so `total - cpu_f32_copies`
    is a lower bound of the GPU's figure and `total` an upper one."""
    if jax.default_backend() != "cpu":
        return 0
    text = compiled.as_text()
    entry = text[text.index("\nENTRY") :]
    return sum(
        4 * int(np.prod([int(d) for d in match.group(1).split(",") if d], dtype=np.int64))
        for match in map(_ENTRY_UPCAST.match, entry.splitlines())
        if match
    )


def _analyse(compiled) -> dict[str, int]:
    stats = overhead.memory_stats(compiled)
    stats["cpu_f32_copies"] = cpu_upcast_bytes(compiled)
    stats["lower_bound"] = stats["total"] - stats["cpu_f32_copies"]
    return stats


def update_memory(config, devices, minibatch: int, remat: str) -> dict:
    """Per-device compiled memory of one update step on a mesh of `devices` with fsdp over all
    of them (data=1), the state split as the loop splits it (`mesh.param_sharding`)."""
    config = one_step_config(config, minibatch, remat)
    cfg, hp, model_cfg, critic, state, rollout = overhead.build_arm(config, config.critic.name, 1, minibatch)
    mesh = mesh_lib.make_mesh(1, len(devices), devices)
    state_sharding = mesh_lib.param_sharding(mesh, state, cfg.mesh.fsdp_min_size)
    state = checkpoints.abstract(state, state_sharding)
    rollout = checkpoints.abstract(rollout, mesh_lib.env_axis_sharding(mesh, rollout))
    learn = overhead.learn_step(cfg, hp, model_cfg, critic, (state_sharding, mesh_lib.replicated(mesh)))
    stats = _analyse(learn.lower(state, rollout).compile())
    return stats | {"devices": len(devices), "minibatch": minibatch, "remat": remat}


def policy_memory(config, device, num_envs: int) -> dict:
    """Compiled memory of the act step (sample 7 tokens, score, value) for `num_envs` envs on
    `device`, params whole (the acting copy)."""
    config = config.copy_and_resolve_references()
    cfg, hp, model_cfg, critic, state, _ = overhead.build_arm(config, config.critic.name, 1, num_envs)
    single = jax.sharding.SingleDeviceSharding(device)

    def on_device(tree):
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=single), tree)

    size, prompt_len = model_cfg.image_size, cfg.model.max_prompt_tokens
    act = make_act(model_cfg, critic if hp.uses_critic else None, hp.descriptor_mode, hp.descriptor_tokens)
    args = on_device(
        (
            state.policy_params,
            state.critic,
            jax.ShapeDtypeStruct((num_envs, size, size, 3), jnp.uint8),
            jax.ShapeDtypeStruct((num_envs, prompt_len), jnp.int32),
            jax.ShapeDtypeStruct((num_envs, prompt_len), jnp.bool_),
            jax.eval_shape(lambda: jax.random.PRNGKey(0)),
            jax.ShapeDtypeStruct((), jnp.float32),
        )
    )
    return _analyse(act.lower(*args).compile()) | {"devices": 1, "num_envs": num_envs}


def fits(total_bytes: int, gpu_gib: float, headroom: float = 0.9) -> bool:
    """Whether `total_bytes` fits a GPU of `gpu_gib` GiB (an "80 GB" A100/H100 has 80 GiB) with
    `headroom` of it usable: the CUDA context, XLA's allocator and fragmentation take the rest."""
    return total_bytes <= headroom * gpu_gib * GIB


def verdict(lower: int, upper: int, gpu_gib: float) -> str:
    """ "yes" if even the upper bound fits, "no" if not even the lower bound does, else "unknown"
    (the CPU cannot tell: benchmarks/gpu_check.py measures it on a GPU)."""
    if fits(upper, gpu_gib):
        return "yes"
    return "unknown" if fits(lower, gpu_gib) else "no"


def rollout_device_bytes(update: dict, policy: dict, key: str) -> int:
    """What the first device holds while acting: its shard of the train state (the update's
    arguments; the rollout among them is tiny) plus the acting step's own `key` figure (whole
    params, KV cache, temporaries). On 1 device the acting params are the state's own buffers."""
    if update["devices"] == 1:
        return policy[key]
    return update["argument"] + policy[key]


def markdown_table(report: dict) -> str:
    rows, gpus = report["update"], GPU_GIB
    head = (
        "| devices | remat | minibatch | argument GiB | temp GiB | total (CPU) GiB | CPU f32 copies GiB "
        "| update lower bound GiB | acting device 0 GiB (lower-upper) |"
    )
    head += "".join(f" fits {g} GB |" for g in gpus)
    lines = [head, "|" + "---|" * (9 + len(gpus))]
    for row in rows:
        figures = ("argument", "temp", "total", "cpu_f32_copies", "lower_bound")
        acting = f"{row['rollout_device0_lower_bound'] / GIB:.1f}-{row['rollout_device0_total'] / GIB:.1f}"
        lines.append(
            f"| {row['devices']} | {row['remat']} | {row['minibatch']} | "
            + " | ".join(f"{row[key] / GIB:.1f}" for key in figures)
            + f" | {acting} |"
            + "".join(f" {row[f'fits_{g}gb']} |" for g in gpus)
        )
    return "\n".join(lines)


def measure(config, device_counts, minibatches, remats, policy_envs: int, progress=None) -> dict:
    """Every (devices, minibatch, remat) update and one policy step, compiled from `config`'s
    shapes; each update row gains what device 0 holds while acting (`rollout_device0_*`) and
    a `fits_<N>gb` verdict for 80 and 40 GiB over the larger of update and acting.
    `progress(text)` hears of each compile as it ends (a 7B compile takes minutes on a CPU)."""
    progress = progress or (lambda text: None)
    policy = policy_memory(config, jax.devices()[0], policy_envs)
    progress(f"policy step: {policy}")
    rows = []
    for count in device_counts:
        for minibatch in minibatches:
            for remat in remats:
                row = update_memory(config, jax.devices()[:count], minibatch, remat)
                for key in ("total", "lower_bound"):
                    row[f"rollout_device0_{key}"] = rollout_device_bytes(row, policy, key)
                upper = max(row["total"], row["rollout_device0_total"])
                lower = max(row["lower_bound"], row["rollout_device0_lower_bound"])
                row |= {f"fits_{gpu}gb": verdict(lower, upper, gpu) for gpu in GPU_GIB}
                rows.append(row)
                progress(f"update: {row}")
    return {"update": rows, "policy": policy}
