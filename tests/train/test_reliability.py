"""Faults around a training run: a busy workdir, non-finite values, a failed save, kill -9."""

import csv
import errno
import os
import signal
import socket
import subprocess
import sys
import time

import jax.numpy as jnp
import pytest

from configs import default
from rl2vla_jax import checkpoints
from rl2vla_jax.train import loop
from rl2vla_jax.train import update as update_lib
from rl2vla_jax.train.workdir_lock import LOCK_FILE, WorkdirBusy, WorkdirLock
from rl2vla_jax.validation import RunStopped

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLD_LOCK = (
    "import sys, time; from rl2vla_jax.train.workdir_lock import WorkdirLock; "
    "WorkdirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)"
)


def _tiny_config(iterations: int):
    config = default.base_config()
    config.train.iterations, config.train.checkpoint_every = iterations, 1
    config.env.max_episode_steps, config.env.image_size = 4, 64
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = 4, 2
    return config


def _hold_lock_in_child(workdir) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(workdir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_lock_on_a_workdir_is_refused_naming_the_holder(tmp_path):
    first = WorkdirLock(tmp_path).acquire()
    with pytest.raises(WorkdirBusy, match=f"in use by pid {os.getpid()} on host {socket.gethostname()}"):
        WorkdirLock(tmp_path).acquire()  # flock conflicts between two opens, even in one process
    first.release()
    assert not (tmp_path / LOCK_FILE).exists()
    with WorkdirLock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"pid {os.getpid()} on host {socket.gethostname()}\n"


def test_the_lock_of_a_killed_holder_does_not_block(tmp_path):
    child = _hold_lock_in_child(tmp_path)
    with pytest.raises(WorkdirBusy, match=f"pid {child.pid} "):
        WorkdirLock(tmp_path).acquire()
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert f"pid {child.pid} " in (tmp_path / LOCK_FILE).read_text()  # the file stays behind
    with WorkdirLock(tmp_path):
        assert f"pid {os.getpid()} " in (tmp_path / LOCK_FILE).read_text()


def test_a_second_trainer_on_a_busy_workdir_exits_2_with_one_line(tmp_path):
    child = _hold_lock_in_child(tmp_path)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "rl2vla_jax.train", "--config=configs/default.py", f"--workdir={tmp_path}"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        child.kill()
        child.wait()
    lines = proc.stderr.strip().splitlines()
    assert (proc.returncode, len(lines)) == (2, 1), proc.stderr[-3000:]
    assert lines[0].startswith(
        f"error: workdir {tmp_path} is in use by pid {child.pid} on host {socket.gethostname()} (lock "
    ), lines[0]
    assert sorted(os.listdir(tmp_path)) == [LOCK_FILE]  # the refused trainer wrote nothing


def _diverging_update(real, from_iteration: int):
    """`update` whose grad_norm and value_loss turn NaN on iterations >= from_iteration."""

    def update(*args):
        state, metrics = real(*args)
        diverged = args[-2].iteration >= from_iteration  # the state before this update
        for key in ("value_loss", "grad_norm"):
            metrics[key] = jnp.where(diverged, jnp.nan, metrics[key])
        return state, metrics

    return update


@pytest.mark.sim
@pytest.mark.slow
def test_non_finite_metrics_stop_the_run_at_the_last_good_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(update_lib, "update", _diverging_update(update_lib.update, 2))
    workdir = tmp_path / "run"
    with pytest.raises(RunStopped) as stopped:
        loop.train(_tiny_config(5), str(workdir))
    directory = workdir / "checkpoints"
    assert str(stopped.value) == (
        f"non-finite grad_norm=nan at iteration 2; the last good checkpoint is {directory / '2'}, "
        "nothing was saved after it"
    )
    assert checkpoints.saved_steps(str(directory)) == [1, 2]
    assert _summary_iterations(workdir) == [0, 1]  # iteration 2 is not logged either
    assert not (workdir / LOCK_FILE).exists()  # released on the way out


@pytest.mark.sim
@pytest.mark.slow
def test_a_failing_save_keeps_older_checkpoints_and_stops_the_run(tmp_path, monkeypatch):
    import orbax.checkpoint as ocp

    real_write = ocp.JsonCheckpointHandler._save_fn  # writes the assets item's JSON file

    async def disk_full_at_step_3(self, item, directory):
        if os.path.basename(os.path.dirname(str(directory))).startswith("3."):  # 3.orbax-checkpoint-tmp
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory))
        return await real_write(self, item, directory)

    monkeypatch.setattr(ocp.JsonCheckpointHandler, "_save_fn", disk_full_at_step_3)
    workdir = tmp_path / "run"
    with pytest.raises(RunStopped) as stopped:
        loop.train(_tiny_config(5), str(workdir))
    directory = workdir / "checkpoints"
    message = str(stopped.value)
    assert message.startswith(
        "saving checkpoint step 3 failed (OSError: [Errno 28] No space left on device"
    ), message
    assert message.endswith(f"the last good checkpoint is {directory / '2'}, the run stopped"), message
    assert checkpoints.saved_steps(str(directory)) == [1, 2]
    monkeypatch.undo()
    step = checkpoints.resolve(str(workdir))
    assert step.step == 2
    params, _, _ = checkpoints.load_policy(str(workdir))  # intact: it restores
    assert params


def _summary_iterations(workdir) -> list[int]:
    with open(workdir / "summary.csv", newline="") as f:
        return [int(row["iteration"]) for row in csv.DictReader(f)]


def _phases(path) -> list[tuple[int, str]]:
    if not os.path.exists(path):
        return []
    return [(int(i), name) for i, name, _ in (line.split() for line in open(path).read().splitlines())]


@pytest.mark.sim
@pytest.mark.slow
def test_after_kill_9_and_resume_the_summary_holds_every_iteration_once(tmp_path):
    workdir, phase_log = tmp_path / "run", tmp_path / "phases"
    command = [
        sys.executable, "-m", "rl2vla_jax.train", "--config=configs/default.py",
        "--config.train.iterations=5", f"--workdir={workdir}",
    ]  # fmt: skip
    env = {**os.environ, loop.PHASE_LOG_ENV: str(phase_log)}
    killed = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    # Checkpoint 2 saved and iteration 2 (0-based) logged: then kill the trainer and its simulators.
    while (2, "checkpoint") not in _phases(phase_log) and killed.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    with open(workdir / "summary.csv", newline="") as f:
        before = list(csv.DictReader(f))
    assert [int(row["iteration"]) for row in before] == [0, 1, 2]  # logged before the kill
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resumed from {workdir / 'checkpoints'} at iteration 2" in proc.stdout
    with open(workdir / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["iteration"]) for row in rows] == [0, 1, 2, 3, 4]
    table = (workdir / "summary.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in table[2:]] == ["0", "1", "2", "3", "4"]
    # Iterations 0-1 are the killed run's rows, kept as it wrote them.
    assert rows[:2] == before[:2]
