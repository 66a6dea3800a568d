"""`experiments/diagnostics/same_run.py`: two run folders are called identical only when every
demonstration byte and every SFT parameter is equal (exp33 and exp35 rest on it)."""

import os
import shutil
import subprocess
import sys

import numpy as np

from rl2vla_jax import checkpoints
from rl2vla_jax.data.prompt import tiny_tokenizer
from rl2vla_jax.models.config import get_preset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "experiments", "diagnostics", "same_run.py")


def _params(nudged: bool = False) -> dict:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(5, 3)).astype(np.float32)
    if nudged:  # the next float32 up: the smallest change there is
        kernel[2, 1] = np.nextafter(kernel[2, 1], np.float32(np.inf))
    return {
        "policy": {"llm": {"kernel": kernel}, "vision": {"pos": rng.normal(size=(4,)).astype(np.float32)}}
    }


def _save_sft(run, step: int, params: dict) -> None:
    mgr = checkpoints.manager(str(run / "sft" / checkpoints.CHECKPOINTS))
    assets = checkpoints.make_assets(get_preset("tiny"), {}, tiny_tokenizer())
    checkpoints.save(mgr, step, params, assets)
    mgr.close()


def _same_run(a, b) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, SCRIPT, str(a), str(b)], capture_output=True, text=True, env=env, timeout=300
    )


def test_identical_runs_pass_and_any_difference_fails(tmp_path):
    run_a = tmp_path / "a"
    (run_a / "demos").mkdir(parents=True)
    (run_a / "demos" / "shard-00000.array_record").write_bytes(bytes(range(256)))
    (run_a / "demos" / "manifest.jsonl").write_text('{"episodes": [0, 1]}\n')
    _save_sft(run_a, 5, _params())

    run_b = tmp_path / "b"
    shutil.copytree(run_a, run_b)
    done = _same_run(run_a, run_b)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "identical"

    # One parameter one float32 ulp away, in a newer step (the one that counts): different.
    _save_sft(run_b, 6, _params(nudged=True))
    done = _same_run(run_a, run_b)
    assert done.returncode == 1 and done.stdout.splitlines()[-1] == "different"
    assert "2 parameter arrays, 1 differ" in done.stdout

    # Equal policies but one demonstration byte changed: different.
    shutil.rmtree(run_b)
    shutil.copytree(run_a, run_b)
    shard = run_b / "demos" / "shard-00000.array_record"
    data = bytearray(shard.read_bytes())
    data[100] ^= 1
    shard.write_bytes(bytes(data))
    original = (run_a / "demos" / "shard-00000.array_record").stat()
    os.utime(shard, ns=(original.st_atime_ns, original.st_mtime_ns))  # same size and time: bytes must be read
    done = _same_run(run_a, run_b)
    assert done.returncode == 1 and "1 differ ['shard-00000.array_record']" in done.stdout


def test_a_fingerprint_stands_in_for_a_run_folder(tmp_path):
    """Runs on other machines are compared through a committed fingerprint (hashes only)."""
    run_a = tmp_path / "a"
    (run_a / "demos").mkdir(parents=True)
    (run_a / "demos" / "shard-00000.npz").write_bytes(b"actions and proprio")
    (run_a / "demos" / "shard-00000.array_record").write_bytes(b"images too")
    _save_sft(run_a, 5, _params())
    env = dict(os.environ, PYTHONPATH=ROOT)
    made = subprocess.run(
        [sys.executable, SCRIPT, "--fingerprint", str(run_a)], capture_output=True, text=True, env=env, timeout=300
    )
    assert made.returncode == 0, made.stderr
    fingerprint = tmp_path / "fingerprint.json"
    fingerprint.write_text(made.stdout)
    assert "policy" in made.stdout and "shard-00000.npz" in made.stdout

    run_b = tmp_path / "b"
    shutil.copytree(run_a, run_b)
    done = _same_run(run_b, fingerprint)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "identical", done.stdout + done.stderr

    # Only the images' shard differs: the fingerprint says which kind of file.
    (run_b / "demos" / "shard-00000.array_record").write_bytes(b"images, re-rendered")
    done = _same_run(run_b, fingerprint)
    assert done.returncode == 1 and "1 differ ['shard-00000.array_record'] ['.array_record']" in done.stdout

    # The same demonstrations, a policy one float32 ulp away: different.
    shutil.rmtree(run_b)
    shutil.copytree(run_a, run_b)
    _save_sft(run_b, 6, _params(nudged=True))
    done = _same_run(fingerprint, run_b)
    assert done.returncode == 1 and "2 parameter arrays, 1 differ" in done.stdout
