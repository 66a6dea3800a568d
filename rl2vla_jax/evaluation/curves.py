"""Learning curves of RL runs: train-split success and return vs env steps and wall-clock seconds.

A method is a label and the run directories of its seeds (`python -m rl2vla_jax.train
--workdir`). Each run's summary.csv gives one row per logged iteration (train/logging.py); the
run's `run.json` (written by the trainer) gives the env steps of one iteration:
    env steps after iteration i = (i + 1) x env.num_envs x rollout.episodes_per_env
                                  x env.max_episode_steps x processes.
Wall-clock seconds: the `elapsed_seconds` column when the run has one (the trainer logs it,
continued across resumes); else the running sum of
the per-iteration phase times (time_simulator + time_policy + time_update + time_host), each
logged row standing for the iterations since the previous one (train.log_every > 1). That is
training time: periodic evaluations and checkpoint saves are not in it.

Seeds are aligned by iteration, over the iterations every seed has logged (a run still going
shortens the curve of its method). Smoothing (`window` W): a seed's point at iteration i is the
mean of its logged rows with i - W < iteration <= i (trailing, so no point looks ahead; fewer
rows at the start). A CPU run's iteration holds a few episodes, so one iteration's success is
0-1 noise and the band over seeds spans the whole axis; W iterations pool W times the episodes.
Per iteration: the mean over seeds and a Student-t 95%
interval over seeds (intervals.mean_interval; one seed: the line alone; the plot clips a success
band to [0, 1], curves.csv keeps the interval as computed). On the wall-clock axis a
point sits at the seeds' mean elapsed time. Files: curves.csv (one row per method x iteration)
and curves.png (success and return, vs env steps and vs seconds).
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from rl2vla_jax.evaluation import intervals
from rl2vla_jax.validation import ConfigError

METRICS = ("success", "return")
PHASE_TIMES = ("time_simulator", "time_policy", "time_update", "time_host")


def read_summary(run: str) -> dict[str, np.ndarray]:
    """summary.csv as {column: float64 [rows]}, rows sorted by iteration."""
    if not os.path.isdir(run):
        raise FileNotFoundError(f"run folder {run} does not exist")
    path = os.path.join(run, "summary.csv")
    if not os.path.isfile(path):
        raise ConfigError(
            f"{run} has no summary.csv: not an RL run folder (python -m rl2vla_jax.train --workdir), "
            "or the run has not finished a logged iteration"
        )
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    needed = ("iteration", *METRICS)
    if not rows or any(k not in rows[0] for k in needed):
        raise ConfigError(f"{path} has no rows with columns {', '.join(needed)}")
    columns = {
        k: np.array([float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows]) for k in rows[0]
    }
    order = np.argsort(columns["iteration"], kind="stable")
    return {k: v[order] for k, v in columns.items()}


RUN_FILE = "run.json"  # written by the RL trainer (rl2vla_jax/train/loop.py) into its workdir


def steps_per_iteration(run: str) -> int:
    """Env steps of one iteration over all processes, from the run's `run.json`."""
    path = os.path.join(run, RUN_FILE)
    if not os.path.isfile(path):
        raise ConfigError(
            f"{run} has no {RUN_FILE} (written by python -m rl2vla_jax.train), so its env steps are unknown"
        )
    with open(path) as f:
        return int(json.load(f)["env_steps_per_iteration"])


def elapsed_seconds(summary: dict[str, np.ndarray], run: str = "") -> np.ndarray:
    if "elapsed_seconds" in summary:
        return summary["elapsed_seconds"]
    present = [k for k in PHASE_TIMES if k in summary]
    if not present:
        raise ConfigError(f"{run}/summary.csv has neither elapsed_seconds nor {', '.join(PHASE_TIMES)}")
    per_iteration = np.nansum([summary[k] for k in present], axis=0)
    # A row logged every log_every iterations stands for the iterations since the last row.
    iterations = summary["iteration"]
    covered = np.diff(np.concatenate([[-1.0], iterations]))
    return np.cumsum(per_iteration * covered)


def trailing_mean(iterations: np.ndarray, values: np.ndarray, at: int, window: int) -> float:
    """Mean of `values` whose iteration lies in (at - window, at]."""
    picked = (iterations > at - window) & (iterations <= at)
    return float(values[picked].mean())


def method_curve(label: str, runs: list[str], window: int = 1) -> list[dict]:
    """One row per iteration all seeds logged: env steps, seconds and each metric's mean/interval
    over seeds of every seed's trailing mean over `window` iterations (1: the raw values)."""
    if window < 1:
        raise ConfigError(f"the curves' smoothing window is {window}; it must be 1 (none) or more iterations")
    seeds = []
    for run in runs:
        summary = read_summary(run)
        per_iteration = steps_per_iteration(run)
        seeds.append((run, summary, per_iteration, elapsed_seconds(summary, run)))
    sizes = {s[2] for s in seeds}
    if len(sizes) > 1:
        detail = ", ".join(f"{run}: {size}" for run, _, size, _ in seeds)
        raise ConfigError(f"the runs of {label} differ in env steps per iteration ({detail})")
    common = set.intersection(*(set(s[1]["iteration"].astype(int)) for s in seeds))
    if not common:
        raise ConfigError(f"the runs of {label} share no logged iteration")
    rows, common = [], sorted(common)
    # Each seed's rows of the common iterations, each iteration once: its last row (a resumed
    # run may log an iteration twice). A window holds only these, so the seeds average the same
    # iterations.
    kept = [np.array([np.flatnonzero(s[1]["iteration"] == i)[-1] for i in common]) for s in seeds]
    for n, iteration in enumerate(common):
        picks = [k[n] for k in kept]
        row = {
            "method": label,
            "iteration": iteration,
            "env_steps": (iteration + 1) * seeds[0][2],
            "seconds": float(np.mean([s[3][i] for s, i in zip(seeds, picks)])),
            "seeds": len(seeds),
            "window": window,
        }
        for metric in METRICS:
            values = np.array(
                [
                    trailing_mean(s[1]["iteration"][k], s[1][metric][k], iteration, window)
                    for s, k in zip(seeds, kept)
                ]
            )
            low, high = intervals.mean_interval(values)
            row |= {
                f"{metric}_mean": float(values.mean()),
                f"{metric}_ci_low": low,
                f"{metric}_ci_high": high,
            }
        rows.append(row)
    return rows


def plot(curves: dict[str, list[dict]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for r, metric in enumerate(METRICS):
        for c, (x_key, x_label) in enumerate((("env_steps", "env steps"), ("seconds", "wall-clock seconds"))):
            ax = axes[r, c]
            for label, rows in curves.items():
                x = np.array([row[x_key] for row in rows], np.float64)
                mean = np.array([row[f"{metric}_mean"] for row in rows])
                (line,) = ax.plot(x, mean, label=f"{label} ({rows[0]['seeds']} seed(s))", linewidth=1.4)
                if rows[0]["seeds"] > 1:
                    low = np.array([row[f"{metric}_ci_low"] for row in rows])
                    high = np.array([row[f"{metric}_ci_high"] for row in rows])
                    if metric == "success":  # a rate: the t band over few seeds can leave [0, 1]
                        low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
                    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.12, linewidth=0)
            ax.set_xlabel(x_label)
            ax.set_ylabel(f"train-split {metric}")
            if metric == "success":
                ax.set_ylim(-0.02, 1.02)  # a rate: the whole range, so flat-at-zero reads as zero
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    window = next(iter(curves.values()))[0]["window"]
    smoothing = f"each seed's trailing mean over {window} iterations, " if window > 1 else ""
    fig.suptitle(
        f"Training rollouts: {smoothing}mean over seeds, band = Student-t 95% interval over seeds",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_curves(specs: list[tuple[str, list[str]]], window: int = 1) -> dict[str, list[dict]]:
    labels = [label for label, _ in specs]
    if len(set(labels)) < len(labels):
        raise ConfigError(f"a run label is given twice: {', '.join(labels)}")
    return {label: method_curve(label, runs, window) for label, runs in specs}


def write_curves(out: str, curves: dict[str, list[dict]]) -> None:
    rows = [row for method_rows in curves.values() for row in method_rows]
    with open(os.path.join(out, "curves.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(curves, os.path.join(out, "curves.png"))
