"""Methods x OOD categories: the comparison table in RL4VLA's layout, from evaluation folders.

A method is a label and the evaluation folders of its seeds (`python -m rl2vla_jax.eval --out`,
one per trained seed). Every cell pools ALL episodes of all seeds (and all evaluation seeds of
each folder) of the settings in that column, and gives the success rate (success at the last
step, as report.py) with its Wilson 95% interval (rl2vla_jax/evaluation/intervals.py) and the
number of episodes behind it.

Columns: "ID (train)" = the `train` setting, if evaluated (the split the policy was trained on,
kept apart from the held-out `id` setting); "ID" = the other ID settings; Vision, Semantic,
Execution; "OOD mean" = the three OOD categories' episodes pooled (each episode weighs the
same, so the category with more settings weighs more). RL4VLA reports the mean of the three
category means instead; that number is given beside it as "OOD cat-mean" (no interval: it is
not a proportion of episodes).

Every folder must hold the same settings with the same number of episodes, evaluated with the
same options (suite, seeds, episodes, temperature, horizon, image size): a table that mixes
them compares unlike things (methods may differ in their number of seeds: n then differs
per cell and is printed in each). Files written: table.md, table.csv (one row per method),
settings.csv (one row per setting, methods as columns), table.png (grouped bars, CI error bars).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from rl2vla_jax.envs.suites import CATEGORIES
from rl2vla_jax.evaluation import intervals
from rl2vla_jax.evaluation.report import SHORT_NAMES, write_csv
from rl2vla_jax.validation import ConfigError

ID_TRAIN = "ID-train"
OOD_POOLED = "OOD"
OOD_CATEGORIES = tuple(c for c in CATEGORIES if c != "ID")
COLUMNS = (ID_TRAIN, *CATEGORIES, OOD_POOLED)
HEADERS = {
    ID_TRAIN: "ID (train)",
    "ID": "ID",
    "visual": "Vision",
    "semantic": "Semantic",
    "execution": "Execution",
    OOD_POOLED: "OOD mean",
}


@dataclasses.dataclass(frozen=True)
class Method:
    label: str
    folders: tuple[str, ...]
    # setting -> {"category", "split", "success": float64 [episodes of all folders and seeds]}
    settings: dict[str, dict]


def column_of(category: str, split: str) -> str:
    return ID_TRAIN if category == "ID" and split == "train" else category


def read_evaluation(folder: str) -> tuple[dict, dict[str, dict]]:
    """(options stored in evaluation.json, {setting: stored result}) of one evaluation folder."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"evaluation folder {folder} does not exist")
    path = os.path.join(folder, "evaluation.json")
    settings_dir = os.path.join(folder, "settings")
    if not os.path.isfile(path):
        raise ConfigError(
            f"{folder} is not an evaluation folder (no evaluation.json); pass the --out folders of "
            "python -m rl2vla_jax.eval"
        )
    files = os.listdir(settings_dir) if os.path.isdir(settings_dir) else []
    names = sorted(n[: -len(".json")] for n in files if n.endswith(".json"))
    if not names:
        raise ConfigError(f"evaluation folder {folder} holds no finished setting (settings/*.json)")
    with open(path) as f:
        options = json.load(f)
    results = {}
    for name in names:
        with open(os.path.join(settings_dir, f"{name}.json")) as f:
            results[name] = json.load(f)
    return options, results


def _episodes(result: dict) -> np.ndarray:
    return np.concatenate([np.asarray(seed["success"], np.float64) for seed in result["seeds"].values()])


def _check_same(reference: tuple, candidate: tuple) -> None:
    """Both (label, folder, options, results); one line naming what differs."""
    (label0, folder0, options0, results0), (label, folder, options, results) = reference, candidate
    where, where0 = f"{folder} ({label})", f"{folder0} ({label0})"
    differ = sorted(
        k for k in options0.keys() | options.keys() if k != "checkpoint" and options0.get(k) != options.get(k)
    )
    if differ:
        changes = "; ".join(f"{k}={options.get(k)!r} vs {options0.get(k)!r}" for k in differ)
        raise ConfigError(f"{where} was evaluated with other options than {where0}: {changes}")
    missing, extra = sorted(results0.keys() - results.keys()), sorted(results.keys() - results0.keys())
    if missing or extra:
        text = ", ".join(
            part
            for part in (
                f"lacks {', '.join(missing)}" if missing else "",
                f"has {', '.join(extra)} besides" if extra else "",
            )
            if part
        )
        raise ConfigError(f"{where} covers other settings than {where0}: it {text}")
    for name in results0:
        n, n0 = len(_episodes(results[name])), len(_episodes(results0[name]))
        if n != n0:
            raise ConfigError(f"{where} has {n} episodes of {name}, {where0} has {n0}")


def load_methods(specs: list[tuple[str, list[str]]]) -> list[Method]:
    """[(label, folders)] -> Methods, every folder checked against the first one."""
    seen_labels, seen_folders, reference, methods = set(), {}, None, []
    for label, folders in specs:
        if label in seen_labels:
            raise ConfigError(f"method label {label!r} is given twice")
        seen_labels.add(label)
        pooled: dict[str, dict] = {}
        for folder in folders:
            key = os.path.realpath(folder)
            if key in seen_folders:
                raise ConfigError(
                    f"evaluation folder {folder} is listed twice ({seen_folders[key]} and {label})"
                )
            seen_folders[key] = label
            options, results = read_evaluation(folder)
            candidate = (label, folder, options, results)
            if reference is None:
                reference = candidate
            else:
                _check_same(reference, candidate)
            for name, result in results.items():
                entry = pooled.setdefault(
                    name, {"category": result["category"], "split": result["split"], "success": []}
                )
                entry["success"].append(_episodes(result))
        for entry in pooled.values():
            entry["success"] = np.concatenate(entry["success"])
        methods.append(Method(label, tuple(folders), pooled))
    return methods


def _cell(successes: np.ndarray) -> dict:
    n, k = len(successes), float(successes.sum())
    low, high = intervals.wilson_interval(k, n)
    return {"success": k / n, "ci_low": low, "ci_high": high, "successes": k, "episodes": n}


def method_rows(methods: list[Method]) -> list[dict]:
    """Per method: {column: cell} for each column with episodes, and the RL4VLA OOD mean."""
    rows = []
    for method in methods:
        by_column: dict[str, list[np.ndarray]] = {}
        for entry in method.settings.values():
            column = column_of(entry["category"], entry["split"])
            by_column.setdefault(column, []).append(entry["success"])
            if column in OOD_CATEGORIES:
                by_column.setdefault(OOD_POOLED, []).append(entry["success"])
        cells = {c: _cell(np.concatenate(by_column[c])) for c in COLUMNS if c in by_column}
        row = {"method": method.label, "seeds": len(method.folders), "cells": cells}
        if all(c in cells for c in OOD_CATEGORIES):
            row["ood_category_mean"] = float(np.mean([cells[c]["success"] for c in OOD_CATEGORIES]))
        rows.append(row)
    return rows


def ordered_settings(methods: list[Method]) -> list[str]:
    """The settings in RL4VLA's column order (SHORT_NAMES), unknown names last."""
    names = list(methods[0].settings)
    order = list(SHORT_NAMES)
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _ci(cell: dict) -> str:
    return f"{_pct(cell['success'])} [{_pct(cell['ci_low'])}, {_pct(cell['ci_high'])}]"


def _cells_text(cells: list[dict | None]) -> tuple[str, list[str]]:
    """(" (n=N)" for a header when every cell has N episodes, else ""; the cells' texts, each
    with its own n when the methods differ, e.g. in their number of seeds)."""
    counts = {c["episodes"] for c in cells if c}
    shared = len(counts) == 1
    texts = [("" if not c else _ci(c) if shared else f"{_ci(c)} (n={c['episodes']})") for c in cells]
    return (f" (n={counts.pop()})" if shared else ""), texts


def markdown(methods: list[Method], rows: list[dict]) -> str:
    columns = [c for c in COLUMNS if any(c in r["cells"] for r in rows)]
    texts = {c: _cells_text([r["cells"].get(c) for r in rows]) for c in columns}
    with_mean = any("ood_category_mean" in r for r in rows)
    header = ["method", "seeds"] + [f"{HEADERS[c]}{texts[c][0]}" for c in columns]
    header += ["OOD cat-mean"] if with_mean else []
    lines = [
        "Success at the last step, % [Wilson 95% CI], over all episodes of all seeds of a method "
        "(n = episodes behind a cell).",
        f"OOD mean pools the episodes of the {', '.join(OOD_CATEGORIES)} settings; OOD cat-mean is the "
        "mean of those three category rates (RL4VLA's definition).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for index, row in enumerate(rows):
        cells = [row["method"], str(row["seeds"])] + [texts[c][1][index] for c in columns]
        if with_mean:
            cells.append(_pct(row["ood_category_mean"]) if "ood_category_mean" in row else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Per setting (% [Wilson 95% CI]):", ""]
    header = ["category", "setting"] + [m.label for m in methods]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, cells in setting_cells(methods):
        entry = methods[0].settings[name]
        n_note, cell_texts = _cells_text(cells)
        column = HEADERS[column_of(entry["category"], entry["split"])]
        lines.append(f"| {column} | {name}{n_note} | " + " | ".join(cell_texts) + " |")
    lines += ["", "Evaluation folders:", ""]
    lines += [f"- {m.label}: " + ", ".join(f"`{f}`" for f in m.folders) for m in methods]
    return "\n".join(lines) + "\n"


def setting_cells(methods: list[Method]) -> list[tuple[str, list[dict]]]:
    return [
        (name, [_cell(m.settings[name]["success"]) for m in methods]) for name in ordered_settings(methods)
    ]


def csv_rows(rows: list[dict]) -> list[dict]:
    flat = []
    for row in rows:
        out = {"method": row["method"], "seeds": row["seeds"]}
        for column, cell in row["cells"].items():
            out |= {f"{column}_{k}": v for k, v in cell.items()}
        out["OOD_category_mean"] = row.get("ood_category_mean", "")
        flat.append(out)
    return flat


def settings_csv_rows(methods: list[Method]) -> list[dict]:
    flat = []
    for name, cells in setting_cells(methods):
        entry = methods[0].settings[name]
        out = {"setting": name, "category": entry["category"], "split": entry["split"]}
        for method, cell in zip(methods, cells):
            out |= {f"{method.label}_{k}": cell[k] for k in ("success", "ci_low", "ci_high", "episodes")}
        flat.append(out)
    return flat


def plot(rows: list[dict], path: str) -> None:
    """Categories along x, one bar per method in each group, Wilson 95% CI error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in COLUMNS if any(c in r["cells"] for r in rows)]
    x = np.arange(len(columns))
    width = 0.8 / len(rows)
    # Wider with more bars, capped so that a 6-method table stays readable on one screen.
    bars = len(columns) * max(1, len(rows))
    fig, ax = plt.subplots(figsize=(min(14.0, max(7.0, 0.35 * bars + 3)), 5.0))
    for index, row in enumerate(rows):
        cells = [row["cells"].get(c) for c in columns]
        mean = np.array([c["success"] if c else np.nan for c in cells]) * 100
        err = np.array(
            [[c["success"] - c["ci_low"], c["ci_high"] - c["success"]] if c else [0, 0] for c in cells]
        ).T
        err = np.clip(err * 100, 0.0, None)  # rounding can put a bound a hair inside the mean
        offset = (index - (len(rows) - 1) / 2) * width
        ax.bar(
            x + offset,
            mean,
            width,
            yerr=err,
            capsize=2,
            label=row["method"],
            edgecolor="black",
            linewidth=0.4,
        )
    ax.set_xticks(x, [HEADERS[c] for c in columns])
    ax.set_ylabel("success at the last step (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Success per category, all episodes of all seeds (bars: Wilson 95% CI)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_tables(out: str, methods: list[Method]) -> str:
    """table.md / table.csv / settings.csv / table.png into OUT; returns the Markdown."""
    rows = method_rows(methods)
    text = markdown(methods, rows)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(text)
    write_csv(os.path.join(out, "table.csv"), csv_rows(rows))
    write_csv(os.path.join(out, "settings.csv"), settings_csv_rows(methods))
    plot(rows, os.path.join(out, "table.png"))
    return text
