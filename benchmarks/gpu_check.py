"""A prepared GPU check (issue 14, item 6): random OpenVLA-7B in bf16, no simulator, no torch,
no downloads. Writes JSON: batched action sampling (actions/s), one PPO update at minibatch 8
with the `:paper` remat (s, TFLOP/s, MFU against the device's bf16 peak), peak device memory
beside XLA's compiled memory of the same two steps (benchmarks/memory_7b.py on the CPU).

    python benchmarks/gpu_check.py --json=PATH [--model=7b|tiny] [--envs=64] [--minibatch=8] [--repeats=3]

Needs jax, flax, optax, orbax, ml_collections, sentencepiece and this repo on the path (no
project install). `--model=tiny` is the CPU test of the same code path (tests/test_gpu_check.py).
FLOPs are counted from the kernel shapes (benchmarks/roofline_7b.py: 2 x params x tokens, plus
attention), the update as 3 x forward (forward, activation and LoRA gradients): XLA's
cost_analysis counts a scanned layer once.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # peak memory = what the steps use

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root: `configs`
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # roofline_7b's FLOP count
from roofline_7b import forward_flops  # noqa: E402

from configs import film_evi  # noqa: E402
from rl2vla_jax import files  # noqa: E402
from rl2vla_jax.models.init import param_shapes  # noqa: E402
from rl2vla_jax.policy.act import make_act  # noqa: E402
from rl2vla_jax.train import builders, compiled_memory, overhead  # noqa: E402

# Dense bf16 peak FLOP/s by a substring of `device.device_kind` (vendor data sheets, no sparsity).
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10": 125e12}


def bf16_peak(device_kind: str) -> float | None:
    return next((peak for name, peak in BF16_PEAK.items() if name in device_kind), None)


def random_params(shapes, seed: int = 0):
    """Random weights made on the device (the 7B host init would draw 7.5e9 normals on the CPU):
    norm scales 1, biases 0, every other leaf N(0, 0.02^2) values from one shared draw of
    2^20 + 7 normals, rolled per leaf and tiled to its shape (one threefry, not one per leaf,
    keeps the compile short; repeating values cost the same FLOPs)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)

    def draw(key):
        pattern = 0.02 * jax.random.normal(key, (2**20 + 7,), jnp.float32)
        out = []
        for i, (path, leaf) in enumerate(leaves):
            name = str(getattr(path[-1], "key", path[-1]))
            if name == "scale":
                out.append(jnp.ones(leaf.shape, leaf.dtype))
            elif name == "bias":
                out.append(jnp.zeros(leaf.shape, leaf.dtype))
            else:
                out.append(jnp.resize(jnp.roll(pattern, 7919 * i), leaf.shape).astype(leaf.dtype))
        return jax.tree_util.tree_unflatten(treedef, out)

    return jax.jit(draw)(jax.random.PRNGKey(seed))


def _timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return times


def _peak_bytes(device) -> int | None:
    stats = device.memory_stats() or {}  # None on the CPU
    return stats.get("peak_bytes_in_use")


def run(model: str, envs: int, minibatch: int, repeats: int) -> dict:
    clock = time.perf_counter()
    config = film_evi.get_config("paper" if model == "7b" else "")
    config.unlock()
    if model != "7b":  # the tiny model with the paper's dtype and remat
        config.model.param_dtype, config.model.remat = "bfloat16", "dots"
    remat = config.model.remat
    config = compiled_memory.one_step_config(config, minibatch, remat)
    cfg, hp, model_cfg, critic, _, rollout_spec = overhead.build_arm(config, config.critic.name, 1, minibatch)
    device = jax.devices()[0]
    state = builders.initial_state(
        cfg, hp, model_cfg, critic, policy_params=random_params(param_shapes(model_cfg))
    )
    jax.block_until_ready(state)
    init_s = time.perf_counter() - clock
    report = {"model": model, "preset": cfg.model.preset, "device_kind": device.device_kind,
              "backend": jax.default_backend(), "envs": envs, "minibatch": minibatch, "remat": remat,
              "param_dtype": cfg.model.param_dtype, "init_s": init_s}  # fmt: skip

    # Acting: sample + score 7 tokens for `envs` envs, as the rollout's act step.
    rng = np.random.default_rng(0)
    size, prompt_len = model_cfg.image_size, cfg.model.max_prompt_tokens
    images = jnp.asarray(rng.integers(0, 256, (envs, size, size, 3), dtype=np.uint8))
    prompt_ids = jnp.asarray(
        rng.integers(3, model_cfg.action_token_begin, (envs, prompt_len)).astype(np.int32)
    )
    prompt_mask = jnp.asarray(np.arange(prompt_len)[None].repeat(envs, 0) < 2 * prompt_len // 3)
    act = make_act(model_cfg, critic, hp.descriptor_mode, hp.descriptor_tokens)
    act_args = (
        state.policy_params,
        state.critic,
        images,
        prompt_ids,
        prompt_mask,
        jax.random.PRNGKey(1),
        1.0,
    )
    start = time.perf_counter()
    compiled_act = act.lower(*act_args).compile()
    report["act_compile_s"] = time.perf_counter() - start
    report["act_compiled"] = overhead.memory_stats(compiled_act)
    jax.block_until_ready(compiled_act(*act_args))  # first run
    act_times = _timed(lambda: compiled_act(*act_args), repeats)
    report["act_s"] = float(np.median(act_times))
    report["actions_per_s"] = envs / report["act_s"]
    report["act_peak_bytes"] = _peak_bytes(device)

    # One PPO update on one minibatch (state donated, as the loop runs it).
    rollout = jax.device_put(overhead.random_rollout(rollout_spec, model_cfg, seed=2))
    learn = overhead.learn_step(cfg, hp, model_cfg, critic)
    start = time.perf_counter()
    compiled_learn = learn.lower(state, rollout).compile()
    report["update_compile_s"] = time.perf_counter() - start
    report["update_compiled"] = overhead.memory_stats(compiled_learn)
    act_args = None  # its params are the state's, which the update donates
    update_times = []
    for _ in range(repeats + 1):  # the first run is not counted (allocation, autotuning)
        start = time.perf_counter()
        state, metrics = compiled_learn(state, rollout)
        jax.block_until_ready((state, metrics))
        update_times.append(time.perf_counter() - start)
    report["update_s"] = float(np.median(update_times[1:]))
    report["update_loss_finite"] = bool(all(np.isfinite(float(v)) for v in jax.device_get(metrics).values()))
    report["peak_bytes"] = _peak_bytes(device)

    flops = 3 * minibatch * forward_flops(state, model_cfg, prompt_len)
    report["update_flops"] = flops
    report["update_tflops_per_s"] = flops / report["update_s"] / 1e12
    peak = bf16_peak(device.device_kind)
    report["bf16_peak_tflops"] = peak and peak / 1e12
    report["update_mfu"] = peak and flops / report["update_s"] / peak
    report["wall_s"] = time.perf_counter() - clock
    return report


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True, help="write the figures to this JSON file")
    parser.add_argument("--model", default="7b", choices=("7b", "tiny"))
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--minibatch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        parser.error(f"--json={args.json}: its folder does not exist")
    report = run(args.model, args.envs, args.minibatch, args.repeats)
    print(json.dumps(report, indent=1), flush=True)
    files.write_json(args.json, report)


if __name__ == "__main__":
    main()
