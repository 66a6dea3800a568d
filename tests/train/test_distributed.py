"""Sharded training and acting give the 1-device losses and actions: 2 processes on localhost
(jax.distributed, gloo CPU collectives) x 2 CPU devices, fsdp inside each and across both."""

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


def _env(devices: int):
    return dict(os.environ, PYTHONPATH=ROOT, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


def _worker(processes: int, process: int, port: int, out, layouts, devices: int):
    args = [sys.executable, WORKER, str(processes), str(process), str(port), str(out), *layouts]
    return subprocess.Popen(args, env=_env(devices))


@pytest.mark.slow
def test_two_processes_with_fsdp_train_and_act_like_one_device(tmp_path):
    # The 1-device reference beside 2 processes x 2 devices running two layouts: fsdp inside
    # each process (data=2 x fsdp=2, as launch/slurm_multinode.sbatch) and across both (data=1 x
    # fsdp=4: the all-gather for acting crosses processes). The first is partitioned with GSPMD:
    # Shardy's partition of it deadlocks (README, scale-out), so it cannot run here.
    layouts = ("2x2-gspmd", "1x4")
    port = _free_port()
    workers = [_worker(1, 0, 0, tmp_path / "one", ["1x1"], devices=1)]
    workers += [_worker(2, i, port, tmp_path / "two", layouts, devices=2) for i in range(2)]
    assert [w.wait(timeout=900) for w in workers] == [0, 0, 0]
    one = json.loads((tmp_path / "one.0.json").read_text())
    assert (one["processes"], one["devices"]) == (1, 1)
    one = one["layouts"]["1x1"]
    for process in range(2):
        result = json.loads((tmp_path / f"two.{process}.json").read_text())
        assert (result["processes"], result["devices"]) == (2, 4)
        for layout in layouts:
            run, where = result["layouts"][layout], f"process {process}, mesh {layout}"
            data, fsdp = (int(n) for n in layout.split("-")[0].split("x"))
            assert run["mesh"] == {"data": data, "fsdp": fsdp}, where
            # Not vacuous: LoRA factors, base weights and Adam moments really are split over fsdp.
            assert run["sharded_trainable"] > 0 and run["sharded_moments"] > 0, where
            assert run["sharded_frozen"] > 0, where
            # The batch is split over all 4 devices: one env each, this process's own two.
            assert run["batch_slices"] == [2 * process, 2 * process + 1], where
            for a, b in zip(one["history"], run["history"], strict=True):
                for key in ("policy_loss", "value_loss", "grad_norm", "approx_kl"):
                    np.testing.assert_allclose(a[key], b[key], rtol=2e-5, atol=1e-6, err_msg=f"{key} {where}")
            # Acting ran on whole params on this process's first device, as the 1-device run did.
            assert run["acting_devices"] == [run["first_local_device"]], where
            assert run["tokens"] == one["tokens"], where
            np.testing.assert_allclose(run["log_prob"], one["log_prob"], rtol=2e-5, err_msg=where)
            np.testing.assert_allclose(run["value"], one["value"], rtol=2e-5, atol=1e-6, err_msg=where)
