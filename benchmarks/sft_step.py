"""What one SFT step costs: time, FLOPs and CPU use of the jitted behaviour-cloning step.

    ./run.sh python benchmarks/sft_step.py [--config_arg=experiment] [--batch=16]
        [--prompt_len=48] [--scan_unroll=N] [--compute_dtype=float32] [--repeats=5] [--json=PATH]

Random images, prompts and action tokens of the config's shapes (no demonstrations needed), a
random init of the config's model, every parameter trained as the `experiment` preset does.
Prints the compile time, the min and median step time over `repeats` rounds of 8 steps, the
step's FLOPs (XLA cost_analysis, counted on a copy with every layer unrolled because a scan's
body is counted once), the rate they imply, the best float32 matmul rate of this machine
measured in the same run, and the process's CPU time per step over the wall time (about the
number of cores the step keeps busy). It is the denominator of the `sft` stage's wall time:
steps x step time (docs/results/cpu.md).
"""

import argparse
import functools
import os
import resource
import statistics
import sys
import time

import jax
import numpy as np
from matmul_peak import matmul_peak_gflops

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root
from configs import sft  # noqa: E402
from rl2vla_jax import files  # noqa: E402
from rl2vla_jax.data.prompt import load_tokenizer, tiny_tokenizer  # noqa: E402
from rl2vla_jax.models.init import init_params  # noqa: E402
from rl2vla_jax.models.trainable import split_trainable  # noqa: E402
from rl2vla_jax.policy import loading  # noqa: E402
from rl2vla_jax.sft import step as sft_step  # noqa: E402

STEPS_PER_ROUND = 8


def random_batch(model_cfg, batch: int, prompt_len: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    size = model_cfg.image_size
    return {
        "images": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
        "prompt_ids": rng.integers(1, model_cfg.action_token_begin, (batch, prompt_len)).astype(np.int32),
        "prompt_mask": np.ones((batch, prompt_len), bool),
        "tokens": rng.integers(0, model_cfg.n_action_bins, (batch, 7)).astype(np.int32),
    }


def step_flops(model_cfg, tx, eos_id, state, batch) -> float:
    depth = max(model_cfg.llm.num_layers, model_cfg.dino.depth, model_cfg.siglip.depth)
    unrolled = model_cfg.replace(scan_unroll=depth)
    fn = functools.partial(sft_step.train_step, unrolled, tx, eos_id)
    analysis = jax.jit(fn).lower(state, batch).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis["flops"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config_arg", default="experiment", help="configs/sft.py preset ('' = tiny)")
    parser.add_argument("--batch", type=int, default=None, help="default: the config's sft.batch_size")
    parser.add_argument(
        "--prompt_len", type=int, default=None, help="default: config.model.max_prompt_tokens"
    )
    parser.add_argument(
        "--scan_unroll", type=int, default=None, help="default: config.model.scan_unroll (experiment: 4)"
    )
    parser.add_argument("--compute_dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    config = sft.get_config(args.config_arg)
    batch_size = args.batch or config.sft.batch_size
    prompt_len = args.prompt_len or config.model.max_prompt_tokens
    model_cfg = loading.model_config(config, None).replace(compute_dtype=args.compute_dtype)
    if args.scan_unroll is not None:
        model_cfg = model_cfg.replace(scan_unroll=args.scan_unroll)
    eos_id = int(load_tokenizer(tiny_tokenizer()).eos_id())
    tx = sft_step.make_optimizer(
        config.sft.learning_rate, config.optim.weight_decay, config.optim.max_grad_norm
    )
    params = init_params(model_cfg, jax.random.PRNGKey(0), **loading.random_init_options(config))
    patterns = (".*",) if config.sft.train_all_params else config.trainable
    state = sft_step.create_state(*split_trainable(params, patterns), tx)
    batch = random_batch(model_cfg, batch_size, prompt_len)

    flops = step_flops(model_cfg, tx, eos_id, state, batch)
    train_step = jax.jit(functools.partial(sft_step.train_step, model_cfg, tx, eos_id), donate_argnums=0)
    start = time.perf_counter()
    state, _ = train_step(state, batch)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - start

    step_s, cpu_ratio = [], []
    for _ in range(args.repeats):
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(STEPS_PER_ROUND):
            state, _ = train_step(state, batch)
        jax.block_until_ready(state)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        step_s.append(wall / STEPS_PER_ROUND)
        cpu_ratio.append(cpu / wall)
    peak = matmul_peak_gflops()

    best = min(step_s)
    report = {
        "config": f"configs/sft.py:{args.config_arg}",
        "batch": batch_size,
        "prompt_len": prompt_len,
        "scan_unroll": model_cfg.scan_unroll,
        "compute_dtype": args.compute_dtype,
        "params": sum(int(np.prod(v.shape)) for v in jax.tree.leaves(params)),
        "compile_s": compile_s,
        "step_s": step_s,
        "step_s_min": best,
        "step_s_median": statistics.median(step_s),
        "step_gflop": flops / 1e9,
        "gflops_per_s": flops / best / 1e9,
        "matmul_peak_gflops": peak,
        "mfu": flops / best / 1e9 / peak,
        "cpu_time_over_wall": statistics.median(cpu_ratio),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }
    print(
        f"{report['config']} batch {batch_size}, prompt {prompt_len}, unroll {model_cfg.scan_unroll}, {args.compute_dtype}: "
        f"step {best * 1e3:.0f} ms min / {report['step_s_median'] * 1e3:.0f} ms median "
        f"(compile {compile_s:.1f} s); {report['step_gflop']:.2f} GFLOP -> {report['gflops_per_s']:.1f} GFLOP/s "
        f"= {report['mfu']:.1%} of the {peak:.0f} GFLOP/s matmul peak; CPU time {report['cpu_time_over_wall']:.2f} x wall "
        f"({report['cpu_count']} cores, load {report['load_average'][0]:.1f})"
    )
    if args.json:
        files.write_json(args.json, report)


if __name__ == "__main__":
    main()
