"""The critic's diagnostics from per-sample records (rl2vla_jax/policy/records.py): does V
track the realised return, where in the policy's entropy does it fail, and how calibrated is it
per OOD setting. Pure numpy; the plots are in `diagnostic_plots`.

Notation: G the realised discounted return from a step, V the critic's value there, value
error e = V - G, "entropy" the mean of the 7 token entropies (what the policy's uncertainty
is), u the descriptor the critic read (which may be H_1 alone, critic.descriptor_tokens).
"""

from __future__ import annotations

import json
import os

import numpy as np

from rl2vla_jax.policy import records as records_lib
from rl2vla_jax.validation import ConfigError

NUM_DECILES = 10
BOOTSTRAP_SAMPLES = 1000


def load(folder: str) -> tuple[dict[str, np.ndarray], str]:
    """(records, kind): kind "evaluation" (an eval --out folder) or "training" (a workdir)."""
    directory = os.path.join(folder, records_lib.RECORDS_FOLDER)
    if not os.path.isdir(directory):
        raise ConfigError(
            f"--run={folder} has no {records_lib.RECORDS_FOLDER}/ folder: train with "
            "train.diagnostics_every > 0, or evaluate with python -m rl2vla_jax.eval"
        )
    columns = records_lib.read_records(directory)
    if not columns or not len(columns["value"]):
        raise ConfigError(f"{directory} holds no records")
    kind = "evaluation" if os.path.isfile(os.path.join(folder, "evaluation.json")) else "training"
    return columns, kind


def decile_index(x: np.ndarray, num: int = NUM_DECILES) -> np.ndarray:
    """Each sample's decile (0..num-1) by rank: sorted order split into `num` equal parts
    (ties broken by position, so every decile holds n/num samples, +-1)."""
    order = np.argsort(x, kind="stable")
    index = np.empty(len(x), np.int64)
    index[order] = np.arange(len(x)) * num // len(x)
    return index


def by_entropy_decile(columns) -> list[dict]:
    """Per decile of the mean token entropy: its range, mean value error, mean |value error|
    and mean |TD error|."""
    entropy = columns["entropies"].mean(axis=-1)
    error = columns["value"] - columns["discounted_return"]
    deciles = decile_index(entropy)
    rows = []
    for d in range(NUM_DECILES):
        chosen = deciles == d
        if not chosen.any():
            continue
        rows.append(
            {
                "decile": d + 1,
                "entropy_low": float(entropy[chosen].min()),
                "entropy_high": float(entropy[chosen].max()),
                "count": int(chosen.sum()),
                "value_error": float(error[chosen].mean()),
                "abs_value_error": float(np.abs(error[chosen]).mean()),
                "abs_td_error": float(np.abs(columns["td_error"][chosen]).mean()),
            }
        )
    return rows


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as Spearman's rho needs)."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    result = np.empty(len(x))
    start = 0
    while start < len(x):
        end = start
        while end + 1 < len(x) and sorted_x[end + 1] == sorted_x[start]:
            end += 1
        result[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return result


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation of the ranks; nan when either is constant."""
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def spearman_with_interval(x, y, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict:
    """rho and a 95% percentile-bootstrap interval (samples resampled with replacement)."""
    x, y = np.asarray(x), np.asarray(y)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(samples):
        pick = rng.integers(0, len(x), len(x))
        boot.append(spearman(x[pick], y[pick]))
    boot = np.asarray(boot)
    boot = boot[np.isfinite(boot)]
    low, high = np.percentile(boot, [2.5, 97.5]) if len(boot) else (np.nan, np.nan)
    return {"rho": spearman(x, y), "ci_low": float(low), "ci_high": float(high), "n": int(len(x))}


def over_training(columns) -> list[dict]:
    """Per iteration: the critic's explained variance of the lambda-returns (A + V, what it is
    trained on), 1 - Var(A) / Var(A + V), and the variance of the (unnormalised) advantages."""
    rows = []
    for iteration in np.unique(columns["iteration"]):
        chosen = columns["iteration"] == iteration
        advantage, value = columns["advantage"][chosen], columns["value"][chosen]
        target_var = np.var(advantage + value)
        rows.append(
            {
                "iteration": int(iteration),
                "explained_variance": float(1.0 - np.var(advantage) / target_var)
                if target_var > 0
                else float("nan"),
                "advantage_variance": float(np.var(advantage)),
                "mean_entropy": float(columns["entropies"][chosen].mean()),
            }
        )
    return rows


def calibration(columns, key: str) -> list[dict]:
    """Per `key` (setting or category): V at t = 0 against the episode's realised return G_0:
    mean error (V - G), RMSE, their means, and how many episodes."""
    first = columns["step"] == 0
    rows = []
    for name in sorted(set(columns[key][first])):
        chosen = first & (columns[key] == name)
        predicted, realised = columns["value"][chosen], columns["discounted_return"][chosen]
        error = predicted - realised
        rows.append(
            {
                key: str(name),
                "episodes": int(chosen.sum()),
                "mean_value": float(predicted.mean()),
                "mean_return": float(realised.mean()),
                "mean_error": float(error.mean()),
                "rmse": float(np.sqrt((error**2).mean())),
                "success": float(columns["success"][chosen].mean()),
            }
        )
    return rows


def entropy_histograms(columns, bins: int = 20) -> dict:
    """Per category: a histogram of the mean token entropy over [0, 1] (density)."""
    entropy = columns["entropies"].mean(axis=-1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = {"edges": edges.tolist(), "categories": {}}
    for category in sorted(set(columns["category"])):
        counts, _ = np.histogram(entropy[columns["category"] == category], bins=edges, density=True)
        out["categories"][str(category) or "unknown"] = counts.tolist()
    return out


def analyse(columns, kind: str) -> dict:
    error = columns["value"] - columns["discounted_return"]
    result = {
        "kind": kind,
        "samples": int(len(error)),
        "has_critic": bool(np.any(columns["value"] != 0)),
        "by_entropy_decile": by_entropy_decile(columns),
        "spearman_u_return": spearman_with_interval(columns["descriptor"], columns["discounted_return"]),
        "spearman_u_abs_value_error": spearman_with_interval(columns["descriptor"], np.abs(error)),
        "over_training": over_training(columns),
        "entropy_histograms": entropy_histograms(columns),
    }
    if kind == "evaluation":
        result["calibration_by_setting"] = calibration(columns, "setting")
        result["calibration_by_category"] = calibration(columns, "category")
    return result


def to_json(result: dict) -> str:
    """JSON with NaN (a constant column's correlation) as null, which strict parsers accept."""

    def clean(value):
        if isinstance(value, float) and not np.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(result), indent=1)


def _table(rows: list[dict], columns: list[str]) -> str:
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def markdown(result: dict, folder: str, plots: list[str]) -> str:
    def rho(r):
        return f"{r['rho']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] (n = {r['n']})"

    parts = [
        f"# Critic diagnostics: {folder}",
        "",
        f"{result['kind']} records, {result['samples']} samples."
        + ("" if result["has_critic"] else " V is 0 everywhere: no critic valued these episodes."),
        "",
        "## Value error and |TD error| by entropy decile (mean token entropy; error = V - G)",
        "",
        _table(
            result["by_entropy_decile"],
            [
                "decile",
                "entropy_low",
                "entropy_high",
                "count",
                "value_error",
                "abs_value_error",
                "abs_td_error",
            ],
        ),
        "",
        "## Spearman correlation of the descriptor u (95% bootstrap interval)",
        "",
        f"- u with the realised return G: {rho(result['spearman_u_return'])}",
        f"- u with |V - G|: {rho(result['spearman_u_abs_value_error'])}",
        "",
        "## Over training (explained variance of the lambda-returns, advantage variance)"
        if result["kind"] == "training"
        else "## All episodes (explained variance of the lambda-returns, advantage variance; iteration -1)",
        "",
        _table(
            result["over_training"], ["iteration", "explained_variance", "advantage_variance", "mean_entropy"]
        ),
    ]
    for key in ("setting", "category"):
        rows = result.get(f"calibration_by_{key}")
        if rows:
            parts += [
                "",
                f"## Value calibration per {key} (V at t = 0 vs the realised return G_0)",
                "",
                _table(rows, [key, "episodes", "mean_value", "mean_return", "mean_error", "rmse", "success"]),
            ]
    parts += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(parts) + "\n"
