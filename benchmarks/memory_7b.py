"""OpenVLA-7B memory by compilation: XLA's memory analysis per device of the PPO update step
and the policy step, compiled ahead of time from abstract bf16 shapes (nothing allocated).

    ./run.sh python benchmarks/memory_7b.py --json=PATH [--devices=1,8] [--minibatch=8] [--remat=none,dots,full]

On the CPU the 8 devices are forced host devices (`--xla_force_host_platform_device_count`,
set here before JAX starts); the train state is split over them with fsdp=8 as the loop
splits it. The update is one optimizer step on one minibatch (`rl2vla_jax/train/
compiled_memory.py`); the policy step samples for the `:paper` preset's 64 envs on one device
(acting always uses a whole-params copy). The CPU backend's buffer assignment is not a GPU's:
read the figures as the compiler's plan on this backend (see docs/performance.md). Also
records the script's wall time and peak RSS.
"""

import os
import sys

_FLAG = "--xla_force_host_platform_device_count"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}=8".strip()

import argparse  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root: `configs`
from configs import film_evi  # noqa: E402
from rl2vla_jax import files  # noqa: E402
from rl2vla_jax.train import compiled_memory  # noqa: E402
from rl2vla_jax.validation import REMAT_POLICIES  # noqa: E402


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", default=None, help="write the report to this JSON file")
    parser.add_argument("--config_arg", default="paper", help="configs/film_evi.py preset ('' = tiny)")
    parser.add_argument("--devices", default="1,8", help="device counts (fsdp over all of them)")
    parser.add_argument("--minibatch", default="8", help="minibatch sizes")
    parser.add_argument("--remat", default=",".join(REMAT_POLICIES), help=f"of {REMAT_POLICIES}")
    parser.add_argument("--policy_envs", type=int, default=None, help="default: the config's env.num_envs")
    args = parser.parse_args()
    remats = [r for r in args.remat.split(",") if r]
    if not set(remats) <= set(REMAT_POLICIES):
        parser.error(f"--remat={args.remat}: each must be one of {REMAT_POLICIES}")
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        parser.error(f"--json={args.json}: its folder does not exist")
    counts = _ints(args.devices)
    if max(counts) > jax.device_count():
        parser.error(f"--devices={args.devices}: only {jax.device_count()} devices")
    clock = time.perf_counter()
    config = film_evi.get_config(args.config_arg)
    report = compiled_memory.measure(
        config,
        counts,
        _ints(args.minibatch),
        remats,
        args.policy_envs or config.env.num_envs,
        progress=lambda text: print(f"[{time.perf_counter() - clock:.0f} s] {text}", flush=True),
    )
    report |= {
        "config": f"configs/film_evi.py:{args.config_arg}",
        "model": config.model.preset,
        "param_dtype": config.model.param_dtype,
        "backend": jax.default_backend(),
        "wall_s": time.perf_counter() - clock,
        # ru_maxrss is in KiB on Linux
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(compiled_memory.markdown_table(report))
    policy = report["policy"]
    print(
        f"policy step, {policy['num_envs']} envs on 1 device: {policy['total'] / 2**30:.1f} GiB "
        f"(argument {policy['argument'] / 2**30:.1f}, temp {policy['temp'] / 2**30:.1f}); "
        f"wall {report['wall_s']:.0f} s, peak RSS {report['peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    if args.json:
        files.write_json(args.json, report)


if __name__ == "__main__":
    main()
