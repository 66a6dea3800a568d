"""The prepared benchmark scripts run end to end at tiny sizes on the CPU and write their JSON
(figures are timings on a shared machine: only their schema and sign are checked here)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script: str, *args: str) -> None:
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args], check=True, cwd=ROOT)


@pytest.mark.slow
def test_gpu_check_runs_the_tiny_model_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    _run("gpu_check.py", "--model=tiny", "--envs=3", "--minibatch=2", "--repeats=1", f"--json={out}")
    report = json.loads(out.read_text())
    assert report["preset"] == "tiny" and report["remat"] == "dots" and report["param_dtype"] == "bfloat16"
    assert report["envs"] == 3 and report["minibatch"] == 2
    for key in ("act_s", "actions_per_s", "update_s", "update_flops", "update_tflops_per_s"):
        assert report[key] > 0, key
    assert report["actions_per_s"] == pytest.approx(3 / report["act_s"])
    assert report["update_loss_finite"]
    for step in ("act_compiled", "update_compiled"):
        memory = report[step]
        assert memory["total"] == memory["argument"] + memory["output"] + memory["temp"] - memory["alias"] > 0
    # the CPU has no bf16 peak in the table and reports no device memory
    assert report["update_mfu"] is None and report["peak_bytes"] is None


@pytest.mark.slow
@pytest.mark.torch
def test_model_speed_writes_the_issue_14_figures(tmp_path):
    pytest.importorskip("peft")
    out = tmp_path / "model_speed.json"
    _run("model_speed.py", "--preset=px64", "--batch=2", "--repeats=1", f"--json={out}")
    report = json.loads(out.read_text())
    for key in ("train_step_speedup", "sampling_speedup", "update_mfu", "matmul_peak_gflops"):
        assert report[key] > 0, key
    for key in (
        "jax_train_step_runs_s",
        "torch_train_step_runs_s",
        "jax_sample_runs_s",
        "torch_sample_runs_s",
    ):
        assert len(report[key]) == 1 and report[key][0] > 0, key
    # both frameworks computed the same PPO loss on the same weights and inputs
    assert report["ppo_loss_abs_difference"] < 1e-4
    assert report["greedy_tokens_identical"]


@pytest.mark.slow
@pytest.mark.sim
def test_rollout_speed_runs_both_paths_and_writes_the_issue_14_figures(tmp_path):
    out = tmp_path / "rollout_speed.json"
    _run(
        "rollout_speed.py",
        "--preset=tiny",
        "--envs=2",
        "--groups=2",
        "--steps=2",
        "--repeats=1",
        f"--json={out}",
    )
    report = json.loads(out.read_text())
    assert len(report["sequential_s"]) == len(report["pipelined_s"]) == 1
    assert report["pipelined_speedup"] == pytest.approx(report["sequential_s"][0] / report["pipelined_s"][0])
    for key in ("simulator_s_per_step", "policy_s_per_step"):
        assert report[key] > 0, key
    assert 0 < report["pipelined_simulator_wait_s"][0] and 0 < report["sequential_simulator_s"][0]
    assert len(report["load_average"]) == 3 and report["cpu_count"] >= 1
    assert report["tokens_identical"]  # both paths drew the same actions for the same episodes
    assert (report["envs"], report["groups"], report["steps"]) == (2, 2, 2)


@pytest.mark.slow
def test_sft_step_times_the_step_and_counts_its_flops(tmp_path):
    out = tmp_path / "sft_step.json"
    _run("sft_step.py", "--config_arg=", "--batch=2", "--prompt_len=12", "--repeats=1", f"--json={out}")
    report = json.loads(out.read_text())
    assert (report["batch"], report["prompt_len"], report["compute_dtype"]) == (2, 12, "float32")
    assert report["scan_unroll"] == 1  # the tiny config's own (`experiment` unrolls 4)
    assert len(report["step_s"]) == 1 and report["step_s_min"] == report["step_s"][0] > 0
    assert report["step_gflop"] > 0 and report["matmul_peak_gflops"] > 0
    assert report["gflops_per_s"] == pytest.approx(report["step_gflop"] / report["step_s_min"])
    assert report["params"] > 0 and report["cpu_time_over_wall"] > 0
