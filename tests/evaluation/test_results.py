"""Multi-method results: the category table from synthetic evaluation folders, learning curves from
synthetic run folders, and the command's one-line errors (no simulator, no JAX compile)."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rl2vla_jax.evaluation import curves, intervals, tables
from rl2vla_jax.validation import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CATEGORY = {
    "train": ("ID", "train"),
    "id": ("ID", "test"),
    "unseen_table": ("visual", "test"),
    "image_noise_weak": ("visual", "test"),
    "unseen_objects": ("semantic", "test"),
    "object_moved": ("execution", "test"),
}
EVAL_SEEDS, EPISODES = (0, 1), 3  # 6 episodes per setting per folder
# Successes out of 6 per setting, for each method's two seed folders (hand-chosen).
SUCCESSES = {
    "ppo": (
        {
            "train": 5,
            "id": 4,
            "unseen_table": 3,
            "image_noise_weak": 1,
            "unseen_objects": 2,
            "object_moved": 0,
        },
        {
            "train": 6,
            "id": 3,
            "unseen_table": 2,
            "image_noise_weak": 2,
            "unseen_objects": 4,
            "object_moved": 1,
        },
    ),
    "sft": (
        {
            "train": 2,
            "id": 1,
            "unseen_table": 0,
            "image_noise_weak": 0,
            "unseen_objects": 1,
            "object_moved": 0,
        },
        {
            "train": 3,
            "id": 2,
            "unseen_table": 1,
            "image_noise_weak": 0,
            "unseen_objects": 0,
            "object_moved": 0,
        },
    ),
}


def write_evaluation(folder, successes, episodes=EPISODES, temperature=0.6):
    """An evaluation folder as runner.py writes it; `successes[setting]` of the folder's episodes
    succeed, spread over the evaluation seeds in episode order."""
    folder = str(folder)
    os.makedirs(os.path.join(folder, "settings"))
    options = {"checkpoint": folder, "suite": "ours", "seeds": list(EVAL_SEEDS), "episodes": episodes}
    options |= {"temperature": temperature, "max_episode_steps": 30, "image_size": 64}
    with open(os.path.join(folder, "evaluation.json"), "w") as f:
        json.dump(options, f)
    for setting, count in successes.items():
        flags = [1.0] * count + [0.0] * (len(EVAL_SEEDS) * episodes - count)
        seeds = {
            str(seed): {
                "success": flags[i * episodes : (i + 1) * episodes],
                "success_once": flags[i * episodes : (i + 1) * episodes],
                "return": [2 * s for s in flags[i * episodes : (i + 1) * episodes]],
            }
            for i, seed in enumerate(EVAL_SEEDS)
        }
        category, split = CATEGORY[setting]
        result = {"setting": setting, "category": category, "split": split, "seeds": seeds}
        with open(os.path.join(folder, "settings", f"{setting}.json"), "w") as f:
            json.dump(result, f)
    return folder


@pytest.fixture
def specs(tmp_path):
    return [
        (method, [write_evaluation(tmp_path / f"{method}_seed{i}", s) for i, s in enumerate(seeds)])
        for method, seeds in SUCCESSES.items()
    ]


def test_table_pools_all_episodes_of_all_seeds(specs):
    ppo, sft = tables.method_rows(tables.load_methods(specs))
    expected = {"ID-train": (11, 12), "ID": (7, 12), "visual": (8, 24), "semantic": (6, 12)}
    expected |= {"execution": (1, 12), "OOD": (15, 48)}
    for column, (successes, episodes) in expected.items():
        cell = ppo["cells"][column]
        assert (cell["successes"], cell["episodes"]) == (successes, episodes), column
        assert cell["success"] == pytest.approx(successes / episodes)
        assert (cell["ci_low"], cell["ci_high"]) == pytest.approx(
            intervals.wilson_interval(successes, episodes)
        )
    # Wilson by hand for ppo's ID cell, 7 of 12: centre (p + z^2/2n)/(1 + z^2/n) = 0.563125,
    # half-width z sqrt(p(1-p)/n + z^2/4n^2)/(1 + z^2/n) = 0.243614.
    assert (ppo["cells"]["ID"]["ci_low"], ppo["cells"]["ID"]["ci_high"]) == pytest.approx(
        (0.319511, 0.806740), abs=1e-6
    )
    assert ppo["ood_category_mean"] == pytest.approx((8 / 24 + 6 / 12 + 1 / 12) / 3)
    assert sft["cells"]["visual"]["successes"] == 1 and sft["cells"]["OOD"]["successes"] == 2
    assert sft["cells"]["ID-train"]["success"] == pytest.approx(5 / 12)


def test_write_tables_layout_and_files(specs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    text = tables.write_tables(str(out), tables.load_methods(specs))
    header = "| method | seeds | ID (train) (n=12) | ID (n=12) | Vision (n=24) | Semantic (n=12) | Execution (n=12) | OOD mean (n=48) | OOD cat-mean |"
    assert header in text
    low, high = intervals.wilson_interval(15, 48)
    assert f"| 31.2 [{100 * low:.1f}, {100 * high:.1f}] | 30.6 |" in text  # ppo: OOD pooled, cat-mean
    assert "| ppo | 2 | 91.7 [" in text and "| sft | 2 | 41.7 [" in text
    with open(out / "table.csv") as f:
        rows = {row["method"]: row for row in csv.DictReader(f)}
    assert (
        float(rows["ppo"]["visual_success"]) == pytest.approx(8 / 24) and rows["ppo"]["OOD_episodes"] == "48"
    )
    with open(out / "settings.csv") as f:
        settings = list(csv.DictReader(f))
    # RL4VLA's column order: Train, ID, Table, Noise-w, Obj., Obj. Rep.
    assert [r["setting"] for r in settings] == list(CATEGORY)
    noise = settings[3]
    assert float(noise["ppo_success"]) == pytest.approx(3 / 12) and float(noise["sft_success"]) == 0.0
    assert float(noise["sft_ci_high"]) == pytest.approx(intervals.wilson_interval(0, 12)[1])
    with open(out / "table.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_methods_with_fewer_seeds_print_n_per_cell(specs, tmp_path):
    single = ("sft_one_seed", [write_evaluation(tmp_path / "one", SUCCESSES["sft"][0])])
    methods = tables.load_methods([specs[0], single])
    text = tables.markdown(methods, tables.method_rows(methods))
    assert "| method | seeds | ID (train) | ID | Vision |" in text  # n differs: given per cell
    assert "| sft_one_seed | 1 | 33.3 [9.7, 70.0] (n=6) |" in text
    # Wilson for 0 of 6: upper bound z^2 / (n + z^2) = 3.8415 / 9.8415.
    assert "| Execution | object_moved | 8.3 [1.5, 35.4] (n=12) | 0.0 [0.0, 39.0] (n=6) |" in text


@pytest.mark.parametrize(
    "change, message",
    [
        ("settings", "covers other settings than"),
        ("episodes", "was evaluated with other options than"),
        ("temperature", "temperature=1.0 vs 0.6"),
        ("not_evaluation", "is not an evaluation folder (no evaluation.json)"),
    ],
)
def test_incomparable_folders_are_refused(specs, tmp_path, change, message):
    odd = dict(SUCCESSES["sft"][0])
    kwargs = {}
    if change == "settings":
        del odd["object_moved"]
    elif change == "episodes":
        kwargs["episodes"] = 5
    elif change == "temperature":
        kwargs["temperature"] = 1.0
    folder = write_evaluation(tmp_path / "odd", odd, **kwargs)
    if change == "not_evaluation":
        os.remove(os.path.join(folder, "evaluation.json"))
    with pytest.raises(ConfigError) as err:
        tables.load_methods([specs[0], ("odd", [folder])])
    assert message in str(err.value) and "odd" in str(err.value)


def write_run(folder, iterations, success, returns, seconds, num_envs=3, max_episode_steps=7, processes=1):
    """A run directory: summary.csv (phase times summing to `seconds` per row) and run.json, as
    train/loop.py writes them."""
    folder = str(folder)
    os.makedirs(folder)
    with open(os.path.join(folder, "run.json"), "w") as f:
        json.dump({"env_steps_per_iteration": num_envs * max_episode_steps * processes}, f)
    with open(os.path.join(folder, "summary.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["iteration", "return", "success", "time_host", "time_policy", "time_simulator", "time_update"]
        )
        for row in zip(iterations, returns, success, seconds):
            i, r, s, t = row
            writer.writerow([i, r, s, 0.1 * t, 0.2 * t, 0.3 * t, 0.4 * t])
    return folder


@pytest.fixture
def runs(tmp_path):
    a = write_run(
        tmp_path / "a",
        [0, 1, 2, 3],
        [0.0, 0.25, 0.5, 0.75],
        [1.0, 2.0, 3.0, 4.0],
        [2.0, 3.0, 5.0, 7.0],
        processes=2,
    )
    b = write_run(
        tmp_path / "b", [0, 1, 2], [0.5, 0.25, 1.0], [3.0, 2.0, 5.0], [11.0, 13.0, 17.0], processes=2
    )
    return a, b


def test_curve_seed_mean_band_and_axes(runs):
    rows = curves.method_curve("ppo", list(runs))
    assert [r["iteration"] for r in rows] == [0, 1, 2]  # iterations both seeds logged
    assert [r["env_steps"] for r in rows] == [42, 84, 126]  # (i + 1) x 3 envs x 7 steps x 2 processes
    assert [r["seconds"] for r in rows] == pytest.approx([6.5, 14.5, 25.5])  # mean of cumulative sums
    assert [r["success_mean"] for r in rows] == pytest.approx([0.25, 0.25, 0.75])
    # Two seeds: half-width t_{0.975, 1} s / sqrt(2) = 12.7062 |a - b| / 2.
    assert (rows[2]["success_ci_low"], rows[2]["success_ci_high"]) == pytest.approx(
        (0.75 - 12.706205 * 0.25, 0.75 + 12.706205 * 0.25)
    )
    assert rows[1]["success_ci_low"] == rows[1]["success_ci_high"] == pytest.approx(0.25)  # equal seeds
    assert rows[0]["return_mean"] == pytest.approx(2.0)
    one = curves.method_curve("one", [runs[0]])
    assert [r["env_steps"] for r in one] == [42, 84, 126, 168]
    assert one[3]["return_ci_low"] == one[3]["return_ci_high"] == one[3]["return_mean"] == 4.0


def test_curve_window_is_each_seeds_trailing_mean_over_common_iterations(runs, tmp_path):
    rows = curves.method_curve("ppo", list(runs), window=2)
    # a: success 0, .25, .5 (and .75 at iteration 3, which b never logged); b: .5, .25, 1.
    # Trailing pairs: a 0, .125, .375; b .5, .375, .625.
    assert [r["success_mean"] for r in rows] == pytest.approx([0.25, 0.25, 0.5])
    assert (rows[2]["success_ci_low"], rows[2]["success_ci_high"]) == pytest.approx(
        (0.5 - 12.706205 * 0.125, 0.5 + 12.706205 * 0.125)
    )
    assert rows[2]["return_mean"] == pytest.approx(3.0)  # a (2 + 3) / 2, b (2 + 5) / 2
    assert [r["window"] for r in rows] == [2, 2, 2]
    assert [r["env_steps"] for r in rows] == [42, 84, 126]  # the axes do not move
    assert curves.method_curve("one", [runs[0]], window=2)[3]["success_mean"] == pytest.approx(0.625)
    # A resumed run that logged iteration 1 twice: only its last row enters the window.
    resumed = write_run(tmp_path / "resumed", [0, 1, 1, 2], [0.0, 1.0, 0.0, 0.0], [0.0] * 4, [1.0] * 4)
    assert curves.method_curve("r", [resumed], window=3)[-1]["success_mean"] == 0.0
    with pytest.raises(ConfigError, match="smoothing window is 0"):
        curves.method_curve("ppo", list(runs), window=0)


def test_wall_clock_counts_iterations_between_logged_rows(tmp_path):
    run = write_run(tmp_path / "r", [1, 3, 4], [0, 0, 0], [0, 0, 0], [5.0, 7.0, 2.0])  # log_every 2, then 1
    summary = curves.read_summary(run)
    assert curves.elapsed_seconds(summary, run) == pytest.approx([10.0, 24.0, 26.0])
    summary["elapsed_seconds"] = np.array([1.0, 2.0, 3.0])
    assert list(curves.elapsed_seconds(summary, run)) == [1.0, 2.0, 3.0]


def test_write_curves_and_missing_config(runs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    curves.write_curves(str(out), curves.load_curves([("ppo", list(runs)), ("solo", [runs[1]])]))
    with open(out / "curves.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["ppo"] * 3 + ["solo"] * 3
    assert float(rows[4]["success_mean"]) == 0.25 and rows[4]["seeds"] == "1" and rows[4]["window"] == "1"
    with open(out / "curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    os.remove(os.path.join(runs[1], "run.json"))
    with pytest.raises(ConfigError, match="has no run.json"):
        curves.method_curve("ppo", [runs[1]])


def _results(*args):
    return subprocess.run(
        [sys.executable, "-m", "rl2vla_jax.results", *args], capture_output=True, text=True, cwd=ROOT
    )


def _one_error_line(proc, start):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(start), (
        proc.returncode,
        proc.stderr,
    )


def test_command_writes_table_and_curves(specs, runs, tmp_path):
    out = tmp_path / "out"
    evals = ";".join(f"{label}={','.join(folders)}" for label, folders in specs)
    proc = _results(f"--evals={evals}", f"--runs=ppo={runs[0]},{runs[1]}", f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("table.md", "table.csv", "settings.csv", "table.png", "curves.csv", "curves.png"):
        assert os.path.getsize(out / name) > 0, name
    assert "| ppo | 2 | 91.7 [" in proc.stdout
    with open(out / "curves.csv") as f:
        assert {row["window"] for row in csv.DictReader(f)} == {"5"}  # the command smooths by default
    proc = _results(f"--runs=ppo={runs[0]}", "--curve_window=0", f"--out={tmp_path}/zero")
    _one_error_line(proc, "error: the curves' smoothing window is 0; it must be 1 (none) or more")
    assert not os.path.exists(tmp_path / "zero")


def test_command_errors_are_one_line(specs, tmp_path):
    out = tmp_path / "out"
    _one_error_line(_results(f"--out={out}"), "error: nothing to do: pass --evals")
    _one_error_line(_results("--evals=ppo", f"--out={out}"), "error: --evals='ppo' must be LABEL=DIR")
    proc = _results(f"--evals=ppo={specs[0][1][0]},{tmp_path}/missing", f"--out={out}")
    _one_error_line(proc, f"error: evaluation folder {tmp_path}/missing does not exist")
    short = write_evaluation(tmp_path / "short", {"train": 1, "id": 1})
    proc = _results(f"--evals=ppo={specs[0][1][0]}", f"--evals=short={short}", f"--out={out}")
    _one_error_line(
        proc, f"error: {short} (short) covers other settings than {specs[0][1][0]} (ppo): it lacks"
    )
    assert not os.path.exists(out)  # nothing written on bad input
