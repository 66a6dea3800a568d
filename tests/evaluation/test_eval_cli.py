"""The eval command: one-line errors on bad input, and a full results folder on the simulator."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _eval(*args):
    return subprocess.run(
        [sys.executable, "-m", "rl2vla_jax.eval", "--config=configs/eval.py", *args],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip


def _one_error_line(proc, start):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(start), (
        proc.returncode,
        proc.stderr,
    )


def test_missing_checkpoint_is_one_line_error(tmp_path):
    proc = _eval(f"--checkpoint={tmp_path}/no_such_run", "--settings=train", f"--out={tmp_path}/out")
    _one_error_line(proc, f"error: checkpoint {tmp_path}/no_such_run does not exist")
    assert not os.path.exists(tmp_path / "out")


def test_unknown_setting_is_one_line_error(tmp_path):
    proc = _eval("--checkpoint=random", "--settings=train,unseen_weather", f"--out={tmp_path}/out")
    _one_error_line(proc, "error: unknown setting(s) unseen_weather of suite 'ours'; settings: train, id,")
    proc = _eval("--checkpoint=random", "--suite=mine", f"--out={tmp_path}/out")
    _one_error_line(proc, "error: unknown suite 'mine'")


def test_too_many_episodes_is_one_line_error(tmp_path):
    proc = _eval("--checkpoint=random", "--episodes=50001", f"--out={tmp_path}/out")
    _one_error_line(proc, "error: episodes=50001 must be between 1 and 50000 per setting and seed")
    assert not os.path.exists(tmp_path / "out")


def test_pipelined_rollouts_on_a_batched_simulator_are_one_line_errors(tmp_path):
    proc = _eval(
        "--checkpoint=random", "--suite=rl4vla", "--config.env.pipeline_groups=2", f"--out={tmp_path}/out"
    )
    _one_error_line(
        proc, "error: config.env.pipeline_groups=2 needs env.backend='cpu' and a suite other than rl4vla"
    )
    proc = _eval("--checkpoint=random", "--config.env.pipeline_groups=3", f"--out={tmp_path}/out")
    _one_error_line(proc, "error: config.env.pipeline_groups=3 must be >= 1 and divide config.env.num_envs=2")
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.sim
@pytest.mark.slow
def test_two_settings_one_episode_full_results_folder_then_resume(tmp_path):
    out = tmp_path / "results"
    args = (
        "--checkpoint=random", "--settings=train,image_noise_weak", "--episodes=1", "--seeds=0",
        f"--out={out}", "--config.env.num_envs=1", "--config.env.max_episode_steps=3", "--config.env.image_size=32",
    )  # fmt: skip
    proc = _eval(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in (
        "evaluation.json",
        "per_seed.csv",
        "per_seed.json",
        "summary.csv",
        "summary.md",
        "summary.png",
    ):
        assert os.path.getsize(out / name) > 0, name
    assert sorted(os.listdir(out / "settings")) == ["image_noise_weak.json", "train.json"]
    assert sorted(os.listdir(out / "videos")) == ["image_noise_weak_0.mp4", "train_0.mp4"]
    with open(out / "settings" / "train.json") as f:
        train = json.load(f)
    episode = train["seeds"]["0"]
    assert (
        set(episode) == {"episode_seed", "success", "success_once", "return", "crashed_seeds"}
        and len(episode["success"]) == 1
        and episode["crashed_seeds"] == []
    )
    summary = (out / "summary.md").read_text()
    assert "| ID | train | 1 |" in summary and "visual: Noise-w" in summary
    # The same command again: both settings are read back, nothing is rerun.
    stamp = os.path.getmtime(out / "settings" / "train.json")
    again = _eval(*args)
    assert again.returncode == 0 and "2 setting(s) already done, 0 to run" in again.stdout
    assert os.path.getmtime(out / "settings" / "train.json") == stamp
    # Other options into the same folder: refused in one line instead of mixing results.
    mixed = _eval(
        *args[:-3],
        "--config.env.num_envs=1",
        "--config.env.max_episode_steps=4",
        "--config.env.image_size=32",
    )
    _one_error_line(mixed, f"error: {out} holds an evaluation with other options (max_episode_steps differ)")
