"""The results tables and plot from hand-made per-setting results (no simulator)."""

import csv
import os

import numpy as np
import pytest

from rl2vla_jax.evaluation import intervals, report


def _result(setting, category, successes_per_seed, returns_scale=1.0):
    seeds = {}
    for seed, successes in enumerate(successes_per_seed):
        successes = list(successes)
        seeds[str(seed)] = {
            "episode_seed": list(range(len(successes))),
            "success": successes,
            "success_once": [max(s, 1.0 if i == 0 else 0.0) for i, s in enumerate(successes)],
            "return": [returns_scale * (s + 0.1 * i) for i, s in enumerate(successes)],
        }
    return {"setting": setting, "category": category, "split": "test", "seeds": seeds}


@pytest.fixture
def results():
    return {
        "train": _result("train", "ID", [[1, 1, 0], [1, 0, 1]]),
        "unseen_table": _result("unseen_table", "visual", [[1, 0, 0], [0, 0, 1]]),
        "image_noise_weak": _result("image_noise_weak", "visual", [[0, 0, 0], [0, 1, 0]]),
        "object_moved": _result("object_moved", "execution", [[0, 0, 0], [0, 0, 0]]),
    }


def test_summary_rows_pool_seeds_and_categories(results):
    rows = {row["name"]: row for row in report.summary_rows(results)}
    assert rows["train"]["success"] == pytest.approx(4 / 6) and rows["train"]["episodes"] == 6
    assert (rows["train"]["success_ci_low"], rows["train"]["success_ci_high"]) == pytest.approx(
        intervals.wilson_interval(4, 6)
    )
    visual = rows["visual"]
    assert (
        visual["kind"] == "category"
        and visual["episodes"] == 12
        and visual["success"] == pytest.approx(3 / 12)
    )
    assert rows["OOD"]["episodes"] == 18 and rows["OOD"]["success"] == pytest.approx(3 / 18)
    returns = np.array([1.0, 1.1, 0.2, 1.0, 0.1, 1.2])
    assert (rows["train"]["return_ci_low"], rows["train"]["return_ci_high"]) == pytest.approx(
        intervals.mean_interval(returns)
    )
    assert "semantic" not in rows  # no setting of it was evaluated


def test_write_report_with_comparison(results, tmp_path):
    other = {name: _result(name, r["category"], [[0, 0, 0], [0, 0, 0]]) for name, r in results.items()}
    text = report.write_report(str(tmp_path), results, "sft", other, "random")
    for name in ("per_seed.csv", "per_seed.json", "summary.csv", "summary.md", "summary.png"):
        assert os.path.getsize(tmp_path / name) > 0, name
    with open(tmp_path / "per_seed.csv") as f:
        per_seed = list(csv.DictReader(f))
    assert len(per_seed) == 8 and {r["seed"] for r in per_seed} == {"0", "1"}
    train0 = next(r for r in per_seed if r["setting"] == "train" and r["seed"] == "0")
    assert float(train0["success"]) == pytest.approx(2 / 3)
    assert "difference, points [95% CI]" in text
    # The same evaluation seeds and episode seeds on both sides: a paired interval.
    ones, zeros = _episodes_of(results["train"]), np.zeros(6)
    low, high = intervals.paired_difference_interval(ones, zeros)
    assert f"+66.7 [{100 * low:+.1f}, {100 * high:+.1f}] paired" in text
    # RL4VLA's layout: settings as columns grouped by category, category averages, a difference row.
    layout = text.split("RL4VLA's table layout")[1]
    assert (
        "| policy | ID: Train | visual: Table | visual: Noise-w | **visual avg** | execution: Obj. Rep. | **OOD avg** |"
        in layout
    )
    assert "| difference | +66.7 | +33.3 | +16.7 | +25.0 | +0.0 | +16.7 |" in layout
    with open(tmp_path / "summary.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def _episodes_of(result):
    return np.concatenate([seed["success"] for seed in result["seeds"].values()])


def test_comparison_pairs_only_the_very_same_episodes(results):
    other = {name: _result(name, r["category"], [[0, 1, 0], [1, 0, 0]]) for name, r in results.items()}
    row = next(r for r in report.summary_rows(results, other) if r["name"] == "train")
    assert row["diff_paired"]
    paired = intervals.paired_difference_interval(
        _episodes_of(results["train"]), _episodes_of(other["train"])
    )
    assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx(paired)
    # A category pools settings that share their episode seeds (same layouts): still paired.
    rows = {r["name"]: r for r in report.summary_rows(results, other)}
    ood = [n for n in results if n != "train"]
    assert rows["OOD"]["diff_paired"] and rows["visual"]["diff_paired"]
    pooled = [np.concatenate([_episodes_of(side[n]) for n in ood]) for side in (results, other)]
    ood_interval = (rows["OOD"]["diff_ci_low"], rows["OOD"]["diff_ci_high"])
    assert ood_interval == pytest.approx(intervals.paired_difference_interval(*pooled))
    # Other evaluation seeds, or a crashed episode on one side: independent samples (Newcombe).
    for change in ("seeds", "crash"):
        shifted = {name: dict(r, seeds=dict(r["seeds"])) for name, r in other.items()}
        train = shifted["train"]
        if change == "seeds":
            train["seeds"] = {str(int(k) + 5): v for k, v in train["seeds"].items()}
        else:
            first = dict(train["seeds"]["0"])
            first.update(
                {key: first[key][1:] for key in ("episode_seed", "success", "success_once", "return")}
            )
            train["seeds"]["0"] = first
        row = next(r for r in report.summary_rows(results, shifted) if r["name"] == "train")
        theirs = _episodes_of(train)
        assert not row["diff_paired"], change
        assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx(
            intervals.difference_interval(4, 6, theirs.sum(), len(theirs))
        )


def test_a_setting_whose_episodes_all_crashed_reads_n_a(recwarn):
    crashed = {"episode_seed": [], "success": [], "success_once": [], "return": [], "crashed_seeds": [7, 8]}
    scored = {
        "episode_seed": [9],
        "success": [1.0],
        "success_once": [1.0],
        "return": [0.5],
        "crashed_seeds": [],
    }
    results = {
        "train": {"category": "ID", "split": "train", "seeds": {"0": crashed}},
        "unseen_table": {"category": "Vision", "split": "ood", "seeds": {"0": scored}},
    }
    rows = {row["name"]: row for row in report.summary_rows(results, other=results)}
    assert rows["train"]["episodes"] == 0 and rows["train"]["crashed"] == 2
    assert np.isnan(rows["train"]["success"]) and "diff_success" not in rows["train"]
    assert rows["unseen_table"]["success"] == 1.0 and rows["unseen_table"]["diff_success"] == 0.0
    text = report.markdown(list(rows.values()), "a", "b")
    assert "| ID | train | 0 | n/a [n/a, n/a] |" in text and "(train: 2)" in text
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_id_episodes_differ_from_train_and_ood_settings_pair_with_train():
    # In suite "ours" `id` is the train distribution: on the train setting's seeds it would replay
    # the same episodes and "ID (all)" would count each twice.
    from rl2vla_jax.envs import suites
    from rl2vla_jax.evaluation import runner

    def seeds(setting):
        return {runner.episode_seed(s, e, setting) for s in (0, 1, 2) for e in range(64)}

    train = seeds("train")
    assert not seeds("id") & train
    assert len(seeds("id")) == len(train) == 3 * 64
    for setting in suites.SUITES["ours"]:
        if setting != "id":
            assert seeds(setting) == train, setting  # same layouts: paired comparisons
