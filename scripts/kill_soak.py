"""Kill -9 soak: does a run killed at a random moment resume and end exactly where an
uninterrupted run ends?

    ./run.sh python scripts/kill_soak.py --trials=3 --json=/tmp/kill_soak.json

First one uninterrupted run of the main job (CPU default, --iterations iterations, a checkpoint
every iteration), which also times each phase. Then per trial: the same command in its own
workdir, SIGKILL to its whole process group (trainer and simulator workers) at a moment drawn by
a seeded RNG (a phase: rollout, update or checkpoint write; an iteration; a point inside the
phase, scaled by the reference run's duration of it), a check that every checkpoint left behind
restores, then the same command again. A trial is bit-exact when the final checkpoint (params
incl. LoRA and critic, and the optimizer state) equals the reference's array for array and
summary.csv holds every iteration once with the same metrics (wall-clock columns aside).
The trainer reports its phases through $RL2VLA_PHASE_LOG (rl2vla_jax/train/loop.py).
Writes {"trials", "resumed", "bit_exact", "corrupt_checkpoints", "per_trial": [...]}.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from rl2vla_jax import checkpoints, files  # noqa: E402
from rl2vla_jax.train.loop import PHASE_LOG_ENV  # noqa: E402

PHASES = ("rollout", "update", "checkpoint")
NOT_COMPARED = ("time_", "elapsed_seconds")  # wall-clock columns differ between any two runs


def command(config: str, iterations: int, workdir: str) -> list[str]:
    return [
        sys.executable, "-m", "rl2vla_jax.train", f"--config={config}",
        f"--config.train.iterations={iterations}", "--config.train.checkpoint_every=1",
        f"--workdir={workdir}",
    ]  # fmt: skip


def environment(phase_log: str) -> dict[str, str]:
    env = {**os.environ, PHASE_LOG_ENV: phase_log, "JAX_PLATFORMS": "cpu"}
    # Each run compiles the same two programs: load them from a cache after the first.
    env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.expanduser("~/.cache/rl2vla_jax/xla"))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
    return env


def read_phases(path: str) -> list[tuple[int, str, float]]:
    if not os.path.exists(path):
        return []
    lines = open(path).read().splitlines()
    return [
        (int(i), name, float(t)) for i, name, t in (line.split() for line in lines if line.count(" ") == 2)
    ]


def phase_durations(phases, end: float) -> dict[tuple[int, str], float]:
    """Seconds from each phase's start to the next marker (the run's end after the last)."""
    times = [t for _, _, t in phases[1:]] + [end]
    return {(i, name): later - t for (i, name, t), later in zip(phases, times)}


def run_to_end(cmd, env, log_path: str) -> tuple[int, str, float]:
    started = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    return proc.returncode, proc.stdout, time.time() - started


def run_and_kill(cmd, env, phase_log: str, target: tuple[int, str], delay: float, log_path: str) -> dict:
    """Start `cmd` in a new session, SIGKILL its process group `delay` s after phase `target`
    starts; return where the kill landed (the last phase marker before it)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    marker = None
    while marker is None and proc.poll() is None:
        marker = next((t for i, name, t in read_phases(phase_log) if (i, name) == target), None)
        time.sleep(0.005)
    if marker is None:
        return {"killed": False, "exit_code": proc.returncode}
    time.sleep(max(0.0, marker + delay - time.time()))
    killed_at = time.time()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [(i, name) for i, name, t in read_phases(phase_log) if t <= killed_at]
    iteration, landed = before[-1]
    # "saved": the write had finished, the iteration's last steps (logging) were running.
    return {"killed": True, "landed_phase": landed, "landed_iteration": iteration, "killed_at": killed_at}


def read_step(directory: str, step: int) -> dict:
    """The arrays of one step (params and train_state) as numpy, or raises."""
    mgr = checkpoints.reader(directory)
    try:
        restored = mgr.restore(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardRestore(),
                train_state=ocp.args.StandardRestore(),
                assets=ocp.args.JsonRestore(),
            ),
        )
        return {
            "params": jax.device_get(restored.params),
            "train_state": jax.device_get(restored.train_state),
        }
    finally:
        mgr.close()


def corrupt_steps(workdir: str) -> list[int]:
    directory = os.path.join(workdir, checkpoints.CHECKPOINTS)
    bad = []
    for step in checkpoints.saved_steps(directory):
        try:
            read_step(directory, step)
        except Exception:  # noqa: BLE001  (any failure to read is what this counts)
            bad.append(step)
    return bad


def summary_rows(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "summary.csv"), newline="") as f:
        return list(csv.DictReader(f))


def compare(workdir: str, reference: str, iterations: int) -> dict:
    rows, expected = summary_rows(workdir), summary_rows(reference)
    iterations_logged = [int(row["iteration"]) for row in rows]
    differing = sorted(
        {
            key
            for row, ref in zip(rows, expected)
            for key in set(row) | set(ref)
            if not key.startswith(NOT_COMPARED) and row.get(key) != ref.get(key)
        }
    )
    mine = read_step(os.path.join(workdir, checkpoints.CHECKPOINTS), iterations)
    theirs = read_step(os.path.join(reference, checkpoints.CHECKPOINTS), iterations)
    leaves, ref_leaves = jax.tree.leaves_with_path(mine), jax.tree.leaves_with_path(theirs)
    arrays_differ = [
        jax.tree_util.keystr(path)
        for (path, a), (_, b) in zip(leaves, ref_leaves)
        if not np.array_equal(np.asarray(a), np.asarray(b))
    ]
    if len(leaves) != len(ref_leaves):
        arrays_differ.append(f"{len(leaves)} arrays vs {len(ref_leaves)}")
    return {
        "summary_iterations_once": iterations_logged == list(range(iterations)),
        "metrics_differ": differing,
        "arrays_compared": len(leaves),
        "arrays_differ": arrays_differ[:10],
        "bit_exact": not differing and not arrays_differ and iterations_logged == list(range(iterations)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--config", default="configs/default.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default="/tmp/kill_soak", help="scratch folder (emptied first)")
    args = parser.parse_args()
    if args.trials < 1 or args.iterations < 2:
        parser.error("--trials must be >= 1 and --iterations >= 2")
    shutil.rmtree(args.root, ignore_errors=True)
    os.makedirs(args.root)
    reference = os.path.join(args.root, "reference")
    ref_log = os.path.join(args.root, "reference.phases")
    code, _, ref_seconds = run_to_end(
        command(args.config, args.iterations, reference), environment(ref_log), reference + ".log"
    )
    if code != 0:
        sys.exit(f"the uninterrupted run failed (exit {code}); see {reference}.log")
    phases = read_phases(ref_log)
    durations = phase_durations(phases, os.path.getmtime(os.path.join(reference, "summary.md")))
    print(f"reference: {ref_seconds:.1f} s; phases {len(phases)}", flush=True)
    rng = random.Random(args.seed)
    per_trial = []
    for trial in range(args.trials):
        phase, iteration, fraction = rng.choice(PHASES), rng.randrange(args.iterations), rng.random()
        delay = fraction * durations[(iteration, phase)]
        workdir = os.path.join(args.root, f"trial_{trial:03d}")
        phase_log = workdir + ".phases"
        cmd, env = command(args.config, args.iterations, workdir), environment(phase_log)
        started = time.time()
        record = {"trial": trial, "phase": phase, "iteration": iteration, "delay_s": round(delay, 4)}
        record |= run_and_kill(cmd, env, phase_log, (iteration, phase), delay, workdir + ".killed.log")
        record["corrupt_steps"] = corrupt_steps(workdir)
        record["steps_after_kill"] = checkpoints.saved_steps(os.path.join(workdir, checkpoints.CHECKPOINTS))
        code, stdout, _ = run_to_end(cmd, env, workdir + ".rerun.log")
        resumed = [line for line in stdout.splitlines() if line.startswith("[train]")]
        record["rerun_exit_code"] = code
        record["rerun_start"] = resumed[0].split(": ", 1)[-1].split(";")[0] if resumed else None
        record["resumed"] = code == 0
        if code == 0:
            record |= compare(workdir, reference, args.iterations)
        record["seconds"] = round(time.time() - started, 1)
        record.pop("killed_at", None)
        per_trial.append(record)
        print(json.dumps(record), flush=True)
        # Rewritten after every trial, so a soak stopped early still leaves its figures.
        result = summarise(args, per_trial, ref_seconds)
        files.write_json(args.json, result)
    print(json.dumps({k: v for k, v in result.items() if k != "per_trial"}))


def summarise(args, per_trial: list[dict], ref_seconds: float) -> dict:
    return {
        "trials": len(per_trial),
        "resumed": sum(r["resumed"] for r in per_trial),
        "bit_exact": sum(bool(r.get("bit_exact")) for r in per_trial),
        "corrupt_checkpoints": sum(len(r["corrupt_steps"]) for r in per_trial),
        "trials_requested": args.trials,
        "iterations": args.iterations,
        "config": args.config,
        "seed": args.seed,
        "reference_seconds": round(ref_seconds, 1),
        "per_trial": per_trial,
    }


if __name__ == "__main__":
    main()
