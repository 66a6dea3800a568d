"""The results folder's tables and plot, from the per-setting result files.

  per_seed.csv / per_seed.json   one row per setting x seed: success, success_once, return
  summary.csv                    one row per setting and per category (+ "OOD" = all test
                                 categories but ID): mean and 95% CI of each metric over episodes
  summary.md                     the same as Markdown, plus the success table in RL4VLA's layout
                                 (settings as columns grouped by category, with category averages)
  summary.png                    bar plot of success per setting and category, 95% CI error bars

With a comparison (`--compare`) every table gets the other policy's success and the difference
(this - other) with its 95% interval: paired (Agresti-Min) where both policies played the very
same episodes (same evaluation seeds and episode seeds), else Newcombe's for independent samples. Episodes whose simulator crashed or hung are in no
rate: `episodes` counts the scored ones, `crashed` the others (summary.md lists them).
Intervals: rl2vla_jax/evaluation/intervals.py (Wilson for rates, Student t for returns).
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from rl2vla_jax.envs.suites import CATEGORIES
from rl2vla_jax.evaluation import intervals

METRICS = ("success", "success_once", "return")
# RL4VLA's column names for the settings, in the order of their table.
SHORT_NAMES = {
    "train": "Train",
    "id": "ID",
    "unseen_table": "Table",
    "dynamic_texture_weak": "Texture-w",
    "dynamic_texture_strong": "Texture-s",
    "image_noise_weak": "Noise-w",
    "image_noise_strong": "Noise-s",
    "unseen_objects": "Obj.",
    "unseen_receptacles": "Recep.",
    "unseen_instructions": "Instruct",
    "multi_object_seen_distractor": "M-Obj (IND)",
    "multi_object_unseen": "M-Obj (OOD)",
    "distractor_receptacle": "Dist Recep.",
    "multi_receptacle": "M-Recep.",
    "unseen_positions": "Position",
    "unseen_robot_pose": "Robot Pose",
    "object_moved": "Obj. Rep.",
}
OOD = "OOD"


def _episodes(result: dict, metric: str) -> np.ndarray:
    return np.concatenate([np.asarray(seed[metric], np.float64) for seed in result["seeds"].values()])


def _episode_keys(name: str, result: dict) -> list[tuple[str, str, int]]:
    """(setting, evaluation seed, episode seed) of every scored episode, in `_episodes` order
    (the settings of a category share their episode seeds: the same layouts)."""
    return [
        (name, seed, int(e)) for seed, per in result["seeds"].items() for e in per.get("episode_seed", ())
    ]


def _paired(mine: dict[str, dict], theirs: dict[str, dict]) -> tuple[np.ndarray, np.ndarray] | None:
    """Both sides' success per episode, aligned, when they scored exactly the same episodes of
    the same settings (name -> result on each side)."""
    keys = [k for name, r in mine.items() for k in _episode_keys(name, r)]
    other_keys = [k for name, r in theirs.items() for k in _episode_keys(name, r)]
    n = sum(len(_episodes(r, "success")) for r in mine.values())
    if len(keys) != n or len(set(keys)) != n or set(keys) != set(other_keys) or len(other_keys) != n:
        return None  # older results without episode seeds, or different / crashed episodes
    x = np.concatenate([_episodes(r, "success") for r in mine.values()])
    y = dict(zip(other_keys, np.concatenate([_episodes(r, "success") for r in theirs.values()])))
    return x, np.array([y[k] for k in keys])


def _mean(values: np.ndarray) -> float:
    """NaN, without numpy's empty-slice warning, when every episode crashed."""
    return float(values.mean()) if values.size else float("nan")


def _crashed(result: dict) -> int:
    """Episodes not scored because their simulator crashed or hung (none in older results)."""
    return sum(len(seed.get("crashed_seeds", ())) for seed in result["seeds"].values())


def per_seed_rows(results: dict[str, dict]) -> list[dict]:
    rows = []
    for name, result in results.items():
        for seed, episodes in result["seeds"].items():
            row = {
                "setting": name,
                "category": result["category"],
                "split": result["split"],
                "seed": int(seed),
            }
            row["episodes"] = len(episodes["success"])
            row["crashed"] = len(episodes.get("crashed_seeds", ()))
            nan = float("nan")  # every episode of the seed crashed
            row |= {
                metric: float(np.mean(episodes[metric])) if episodes[metric] else nan for metric in METRICS
            }
            rows.append(row)
    return rows


def _group_rows(results: dict[str, dict]) -> list[tuple[str, str, list[str]]]:
    """(kind, name, settings) for every setting, then every category, then OOD."""
    groups = [("setting", name, [name]) for name in results]
    for category in CATEGORIES:
        members = [n for n, r in results.items() if r["category"] == category]
        if members:
            groups.append(("category", category, members))
    ood = [n for n, r in results.items() if r["category"] != "ID"]
    if ood:
        groups.append(("category", OOD, ood))
    return groups


def summary_rows(results: dict[str, dict], other: dict[str, dict] | None = None) -> list[dict]:
    """Mean and 95% CI per setting / category, pooled over seeds and episodes (and, for a
    category, over its settings: all of them have the same number of episodes)."""
    rows = []
    for kind, name, members in _group_rows(results):
        row = {"kind": kind, "name": name}
        if kind == "setting":
            row["category"] = results[name]["category"]
        else:
            row["category"] = name
        values = {m: np.concatenate([_episodes(results[s], m) for s in members]) for m in METRICS}
        n = len(values["success"])
        row["episodes"] = n
        row["crashed"] = sum(_crashed(results[s]) for s in members)
        for metric in ("success", "success_once"):
            row[metric] = _mean(values[metric])
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = intervals.wilson_interval(
                values[metric].sum(), n
            )
        row["return"] = _mean(values["return"])
        row["return_ci_low"], row["return_ci_high"] = intervals.mean_interval(values["return"])
        if other is not None and all(s in other for s in members):
            theirs = np.concatenate([_episodes(other[s], "success") for s in members])
            if not (n and len(theirs)):  # no scored episode on one side: nothing to compare
                rows.append(row)
                continue
            row["other_success"] = float(theirs.mean())
            row["diff_success"] = row["success"] - row["other_success"]
            paired = _paired({s: results[s] for s in members}, {s: other[s] for s in members})
            row["diff_paired"] = paired is not None
            if paired is not None:
                row["diff_ci_low"], row["diff_ci_high"] = intervals.paired_difference_interval(*paired)
            else:
                row["diff_ci_low"], row["diff_ci_high"] = intervals.difference_interval(
                    values["success"].sum(), n, theirs.sum(), len(theirs)
                )
        rows.append(row)
    return rows


def _pct(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{100 * value:.1f}"


def _ci(row: dict, metric: str, percent: bool = True) -> str:
    fmt = _pct if percent else (lambda v: "n/a" if np.isnan(v) else f"{v:.3f}")
    return f"{fmt(row[metric])} [{fmt(row[f'{metric}_ci_low'])}, {fmt(row[f'{metric}_ci_high'])}]"


def markdown(rows: list[dict], label: str, other_label: str | None) -> str:
    compare = other_label is not None and any("diff_success" in r for r in rows)
    header = ["category", "setting", "episodes", "success % [95% CI]", "success once %", "return [95% CI]"]
    if compare:
        header += [f"success % ({other_label})", "difference, points [95% CI]"]
    lines = [f"Policy: `{label}`" + (f"; compared with `{other_label}`" if compare else ""), ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        name = row["name"] if row["kind"] == "setting" else f"**{row['name']} (all)**"
        cells = [row["category"], name, str(row["episodes"]), _ci(row, "success"), _ci(row, "success_once")]
        cells.append(_ci(row, "return", percent=False))
        if compare:
            if "diff_success" in row:
                diff = f"{100 * row['diff_success']:+.1f} [{100 * row['diff_ci_low']:+.1f}, {100 * row['diff_ci_high']:+.1f}]"
                diff += " paired" if row["diff_paired"] else ""
                cells += [_pct(row["other_success"]), diff]
            else:
                cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    crashed = [
        (row["name"], row["crashed"]) for row in rows if row["kind"] == "setting" and row.get("crashed")
    ]
    if crashed:
        listed = ", ".join(f"{name}: {count}" for name, count in crashed)
        lines += [
            "",
            f"{sum(c for _, c in crashed)} episode(s) crashed or hung in the simulator (worker restarted) "
            f"and are left out of every rate and count above ({listed}).",
        ]
    lines += ["", "Success in RL4VLA's table layout (%, mean over seeds and episodes):", ""]
    lines += rl4vla_layout(rows, label, other_label if compare else None)
    return "\n".join(lines) + "\n"


def rl4vla_layout(rows: list[dict], label: str, other_label: str | None) -> list[str]:
    """One row per policy (and the difference), settings as columns grouped by category, each
    category followed by its average, as RL4VLA's OOD table."""
    settings = {r["name"]: r for r in rows if r["kind"] == "setting"}
    categories = {r["name"]: r for r in rows if r["kind"] == "category"}
    columns = []  # (header, row)
    for category in CATEGORIES:
        members = [r for r in settings.values() if r["category"] == category]
        columns += [(f"{category}: {SHORT_NAMES.get(r['name'], r['name'])}", r) for r in members]
        if category in categories and len(members) > 1:
            columns.append((f"**{category} avg**", categories[category]))
    if OOD in categories:
        columns.append((f"**{OOD} avg**", categories[OOD]))
    lines = ["| policy | " + " | ".join(h for h, _ in columns) + " |", "|---|" + "---|" * len(columns)]
    lines.append(f"| {label} | " + " | ".join(_pct(r["success"]) for _, r in columns) + " |")
    if other_label is not None:
        lines.append(
            f"| {other_label} | "
            + " | ".join(_pct(r["other_success"]) if "other_success" in r else "" for _, r in columns)
            + " |"
        )
        lines.append(
            "| difference | "
            + " | ".join(f"{100 * r['diff_success']:+.1f}" if "diff_success" in r else "" for _, r in columns)
            + " |"
        )
    return lines


def plot(rows: list[dict], path: str, label: str, other_label: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compare = other_label is not None and any("other_success" in r for r in rows)
    ordered = [r for c in (*CATEGORIES, OOD) for r in rows if r["category"] == c and r["kind"] == "setting"]
    ordered += [r for c in (*CATEGORIES, OOD) for r in rows if r["kind"] == "category" and r["name"] == c]
    names = [
        SHORT_NAMES.get(r["name"], r["name"]) if r["kind"] == "setting" else f"{r['name']} avg"
        for r in ordered
    ]
    x = np.arange(len(ordered))
    width = 0.4 if compare else 0.7
    colours = {
        "ID": "#4c72b0",
        "visual": "#55a868",
        "semantic": "#c44e52",
        "execution": "#8172b2",
        OOD: "#333333",
    }
    fig, ax = plt.subplots(figsize=(max(8.0, 0.55 * len(ordered) + 2), 4.6))
    mean = np.array([r["success"] for r in ordered]) * 100
    err = (
        np.array(
            [[r["success"] - r["success_ci_low"], r["success_ci_high"] - r["success"]] for r in ordered]
        ).T
        * 100
    )
    err = np.clip(err, 0.0, None)  # rounding can put a bound a hair inside the mean
    ax.bar(
        x - (width / 2 if compare else 0), mean, width, yerr=err, capsize=2,
        color=[colours.get(r["category"], "#999999") for r in ordered], label=label, edgecolor="black", linewidth=0.4,
    )  # fmt: skip
    if compare:
        theirs = np.array([r.get("other_success", np.nan) for r in ordered]) * 100
        ax.bar(
            x + width / 2,
            theirs,
            width,
            color="white",
            edgecolor="black",
            hatch="//",
            linewidth=0.6,
            label=other_label,
        )
    for position, row in enumerate(ordered):
        if row["kind"] == "category":
            ax.axvspan(position - 0.5, position + 0.5, color="#eeeeee", zorder=-1)
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("success at the last step (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Success per setting and category (bars: 95% CI; colour = category)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_csv(path: str, rows: list[dict]) -> None:
    """Rows of dicts as CSV; the header is every key in first-seen order."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def write_report(out: str, results: dict[str, dict], label: str, other=None, other_label=None) -> str:
    """Write every table and the plot into OUT; returns the Markdown summary."""
    seeds = per_seed_rows(results)
    write_csv(os.path.join(out, "per_seed.csv"), seeds)
    with open(os.path.join(out, "per_seed.json"), "w") as f:
        json.dump(seeds, f, indent=1)
    rows = summary_rows(results, other)
    write_csv(os.path.join(out, "summary.csv"), rows)
    text = markdown(rows, label, other_label if other is not None else None)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    plot(rows, os.path.join(out, "summary.png"), label, other_label if other is not None else None)
    return text
