"""`experiments/diagnostics/failure_modes.py`: each episode lands in the one outcome its last
potential and success flags say (cpu.md's failure counts rest on it)."""

import pytest
from diagnostics_support import load_script, write_eval

failure_modes = load_script("failure_modes")


def test_every_episode_counts_once_under_its_outcome(tmp_path):
    evaluation = write_eval(
        tmp_path / "a",
        {
            "0": {"success": [0, 0, 1], "success_once": [0, 0, 1], "return": [0.0, 0.1, 1.2]},
            # float32 sums of potential differences are not exact
            "1": {"success": [0, 0, 0], "success_once": [0, 1, 0], "return": [0.19999999, 0.2, 0.0]},
        },
    )
    counts = failure_modes.count_outcomes(evaluation, "train")
    assert counts == {
        "never grasped": 2,
        "grasped, held < 5 steps": 1,
        "held >= 5 steps, never placed": 1,
        "placed, then lost": 1,
        "success at the last step": 1,
    }
    table = failure_modes.table([evaluation, evaluation], "train")
    assert "| never grasped | 2 (33.3%) | 2 (33.3%) |" in table
    assert table.splitlines()[-1] == "| episodes | 6 | 6 |"


def test_a_return_no_unplaced_episode_can_have_is_an_error(tmp_path):
    evaluation = write_eval(tmp_path / "b", {"0": {"success": [0], "success_once": [0], "return": [0.7]}})
    with pytest.raises(ValueError, match="not a potential of an unplaced episode"):
        failure_modes.count_outcomes(evaluation, "train")
    with pytest.raises(SystemExit, match="does not exist"):
        failure_modes.count_outcomes(evaluation, "unseen_table")
