"""`experiments/diagnostics/hard_states.py`: evaluations joined by episode seed, the per-state spread
against independent draws, the grouped rates, and initial states read back from the simulator."""

import json

import pytest
from diagnostics_support import load_script, write_eval

hard_states = load_script("hard_states")


def _episodes(seeds, success, returns):
    return {"episode_seed": seeds, "success": success, "success_once": success, "return": returns}


def test_evaluations_join_on_the_episode_seeds_they_share(tmp_path):
    a = write_eval(tmp_path / "a", {"0": _episodes([10, 11, 12], [1, 0, 0], [1.2, 0.1, 0.0])})
    # Another seed order and one episode more: joined by seed, the extra one left out.
    b = write_eval(
        tmp_path / "b", {"0": _episodes([12, 11], [1, 0], [1.2, 0.0]), "1": _episodes([13], [1], [1.2])}
    )
    outcomes = hard_states.load_outcomes([a, b], "train")
    assert outcomes == {11: [(False, True), (False, False)], 12: [(False, False), (True, True)]}
    c = write_eval(tmp_path / "c", {"0": _episodes([99], [0], [0.0])})
    with pytest.raises(SystemExit, match="share no episode seed"):
        hard_states.load_outcomes([a, c], "train")


def test_evaluations_of_different_layouts_are_refused_before_the_simulator_starts(tmp_path, capsys):
    folders = []
    for name, layout in (("narrow", "narrow"), ("full", "full")):
        folders.append(
            write_eval(tmp_path / name, {"0": _episodes([10], [1], [1.2])}, setting="unseen_table")
        )
        (tmp_path / name / "evaluation.json").write_text(json.dumps({"layout": layout}))
    with pytest.raises(SystemExit, match=r"different layouts \['full', 'narrow'\]"):
        hard_states.main(["--setting=unseen_table", *folders])
    with pytest.raises(SystemExit, match="hard_states.py"):
        hard_states.main(["--setting=unseen_table"])  # no folder: the usage


def test_the_spread_counts_states_and_what_independent_draws_would_give():
    # 4 states x 2 evaluations, pooled rate 3/8: two always fail, one fails once, one never fails.
    outcomes = {1: [(0, 0), (0, 0)], 2: [(0, 0), (0, 0)], 3: [(1, 1), (0, 1)], 4: [(1, 1), (1, 1)]}
    table = hard_states.spread_table(outcomes)
    assert "pooled success 37.5% over 4 states x 2 evaluations" in table
    assert f"| 0 of 2 | 2 | {4 * (5 / 8) ** 2:.1f} |" in table
    assert f"| 1 of 2 | 1 | {4 * 2 * (3 / 8) * (5 / 8):.1f} |" in table
    assert f"| 2 of 2 | 1 | {4 * (3 / 8) ** 2:.1f} |" in table


def test_groups_pool_every_evaluation_and_sort_from_the_hardest():
    outcomes = {1: [(1, 1), (1, 1)], 2: [(0, 1), (1, 1)], 3: [(0, 0), (0, 1)]}
    table = hard_states.group_table(outcomes, {1: "brick", 2: "cup", 3: "cup"}, "target object")
    rows = table.splitlines()[2:]
    assert rows == ["| cup | 2 | 25.0% | 75.0% |", "| brick | 1 | 100.0% | 100.0% |"]


def test_distance_bands():
    assert hard_states.distance_band((0.0, 0.0), (0.0, 0.0)) == "0-1 cm"
    assert hard_states.distance_band((0.03, 0.04), (0.0, 0.0)) == "5-6 cm"
    assert hard_states.distance_band((-0.09, 0.015), (-0.09, 0.0)) == "1-2 cm"


@pytest.mark.sim
def test_initial_states_read_back_lie_in_the_layout():
    # The narrow layout spawns the target within 4 cm of the centre.
    narrow = hard_states.read_plans([1_000_000, 1_000_001, 1_000_002], "train", "narrow")
    assert all(p["distance"] in ("0-1 cm", "1-2 cm", "2-3 cm", "3-4 cm") for p in narrow.values())
    again = hard_states.read_plans([1_000_001], "train", "narrow")
    assert again[1_000_001] == narrow[1_000_001]  # a seed decides its state, whatever came before
