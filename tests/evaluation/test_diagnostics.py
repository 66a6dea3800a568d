"""Critic diagnostics on small synthetic records: deciles, correlations and calibration
worked by hand, and the command's outputs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from rl2vla_jax.evaluation import diagnostics
from rl2vla_jax.policy import records


def _synthetic(n=20, seed=0):
    """Sample i has entropy i/n on every token, V = 2i, G = i (error i), TD error -i."""
    rng = np.random.default_rng(seed)
    i = rng.permutation(n).astype(np.float32)
    return {
        "setting": np.where(i < n // 2, "a", "b"),
        "category": np.where(i < n // 2, "id", "vision"),
        "seed": np.arange(n, dtype=np.int64),
        "iteration": (i % 2).astype(np.int64),
        "step": np.zeros(n, np.int32),
        "env": np.zeros(n, np.int32),
        "entropies": np.repeat((i / n)[:, None], 7, axis=1),
        "descriptor": i / n,
        "value": 2 * i,
        "discounted_return": i,
        "td_error": -i,
        "advantage": rng.normal(size=n).astype(np.float32),
        "reward": np.zeros(n, np.float32),
        "success": i >= n // 2,
    }


def test_deciles_by_rank():
    x = np.random.default_rng(1).permutation(30) * 0.1  # 3 per decile
    np.testing.assert_array_equal(diagnostics.decile_index(x), np.round(x * 10).astype(int) // 3)


def test_errors_by_entropy_decile_worked_by_hand():
    rows = diagnostics.by_entropy_decile(_synthetic())
    assert [r["decile"] for r in rows] == list(range(1, 11)) and {r["count"] for r in rows} == {2}
    for d, row in enumerate(rows):  # decile d holds i = 2d and 2d + 1
        assert row["value_error"] == pytest.approx(2 * d + 0.5)
        assert row["abs_td_error"] == pytest.approx(2 * d + 0.5)
        assert row["entropy_low"] == pytest.approx(2 * d / 20) and row["entropy_high"] == pytest.approx(
            (2 * d + 1) / 20
        )


def test_spearman_with_ties_worked_by_hand_and_against_scipy():
    x, y = np.array([1.0, 2, 3, 4, 5]), np.array([5.0, 6, 7, 8, 7])
    # ranks of y: 1, 2, 3.5, 5, 3.5 -> rho = 8 / sqrt(10 * 9.5)
    assert diagnostics.spearman(x, y) == pytest.approx(8 / np.sqrt(95))
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=53), rng.integers(0, 7, 53).astype(float)
    assert diagnostics.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, rel=1e-10)


def test_bootstrap_interval_brackets_rho_and_collapses_for_a_monotone_relation():
    rng = np.random.default_rng(3)
    x = rng.normal(size=41)
    monotone = diagnostics.spearman_with_interval(x, x**3, samples=200)
    assert monotone["rho"] == pytest.approx(1.0) and monotone["ci_low"] == pytest.approx(1.0)
    noisy = diagnostics.spearman_with_interval(x, x + rng.normal(size=41), samples=300)
    assert noisy["ci_low"] < noisy["rho"] < noisy["ci_high"] and noisy["ci_high"] - noisy["ci_low"] > 0.05


def test_calibration_and_over_training_worked_by_hand():
    columns = _synthetic()
    by_setting = {r["setting"]: r for r in diagnostics.calibration(columns, "setting")}
    # setting a holds i = 0..9: error i -> mean 4.5, RMSE sqrt(mean(i^2)) = sqrt(28.5)
    assert by_setting["a"]["episodes"] == 10 and by_setting["a"]["mean_error"] == pytest.approx(4.5)
    assert by_setting["a"]["rmse"] == pytest.approx(np.sqrt(28.5))
    assert by_setting["b"]["mean_error"] == pytest.approx(14.5) and by_setting["b"]["success"] == 1.0
    rows = diagnostics.over_training(columns)
    for row in rows:
        chosen = columns["iteration"] == row["iteration"]
        a, v = columns["advantage"][chosen], columns["value"][chosen]
        assert row["explained_variance"] == pytest.approx(1 - np.var(a) / np.var(a + v), rel=1e-5)
        assert row["advantage_variance"] == pytest.approx(np.var(a), rel=1e-5)


def _command(run, out):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "rl2vla_jax.diagnostics", f"--run={run}", f"--out={out}"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def test_the_command_on_a_training_run_and_an_evaluation_folder(tmp_path):
    columns = _synthetic(40)
    run, evaluation = tmp_path / "run", tmp_path / "eval"
    for i in range(2):
        part = {k: v[columns["iteration"] == i] for k, v in columns.items()}
        records.write_records(str(run / "records" / f"iteration_{i:05d}.npz"), part)
    for setting in ("a", "b"):
        part = {k: v[columns["setting"] == setting] for k, v in columns.items()}
        records.write_records(str(evaluation / "records" / f"{setting}.npz"), part)
    (evaluation / "evaluation.json").write_text("{}")

    done = _command(run, tmp_path / "out_run")
    assert done.returncode == 0, done.stderr
    written = set(os.listdir(tmp_path / "out_run"))
    assert {"diagnostics.md", "diagnostics.json"} <= written and len(
        {w for w in written if w.endswith(".png")}
    ) >= 3
    result = json.loads((tmp_path / "out_run" / "diagnostics.json").read_text())
    assert result["kind"] == "training" and "calibration_by_setting" not in result
    assert result["spearman_u_return"]["rho"] == pytest.approx(1.0)

    done = _command(evaluation, tmp_path / "out_eval")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out_eval" / "diagnostics.md").read_text()
    assert "## Value calibration per setting" in text and "| a | 20 |" in text
    assert "calibration.png" in os.listdir(tmp_path / "out_eval")

    done = _command(tmp_path / "missing", tmp_path / "out_missing")
    assert done.returncode == 2 and done.stderr.startswith("error:") and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "out_missing").exists()
