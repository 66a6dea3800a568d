"""Two processes on localhost (jax.distributed, gloo CPU collectives) train like one."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "train", "distributed_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, PYTHONPATH=ROOT, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    return env


@pytest.mark.slow
def test_two_process_run_on_localhost_matches_one_process(tmp_path):
    single = tmp_path / "single.json"
    subprocess.run([sys.executable, WORKER, "1", "0", "0", str(single)], env=_env(), check=True, timeout=600)
    port = _free_port()
    double = tmp_path / "double.json"
    workers = [
        subprocess.Popen([sys.executable, WORKER, "2", str(i), str(port), str(double)], env=_env())
        for i in range(2)
    ]
    assert [w.wait(timeout=600) for w in workers] == [0, 0]
    one, two = json.loads(single.read_text()), json.loads(double.read_text())
    assert (one["processes"], two["processes"], two["devices"]) == (1, 2, 2)
    for a, b in zip(one["history"], two["history"]):
        for key in ("policy_loss", "value_loss", "grad_norm"):
            np.testing.assert_allclose(a[key], b[key], rtol=2e-5, atol=1e-6, err_msg=key)
