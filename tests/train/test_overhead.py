"""measure_overhead: its parameter counts against a count by hand of the critics' layers, and
the report's schema on a small CPU config."""

import pytest

from configs import film_evi
from rl2vla_jax import config_base
from rl2vla_jax.train import overhead


def _dense(fan_in: int, fan_out: int) -> int:
    return fan_in * fan_out + fan_out


def _value_head(width: int, sizes, last_bias: bool = True) -> int:
    dims = (width, *sizes, 1)
    # RL4VLA's head (`critic.rl4vla_head`, used by :paper) has no bias on its last layer
    return sum(_dense(a, b) for a, b in zip(dims[:-1], dims[1:])) - (0 if last_bias else 1)


def _film(width: int, film_hidden: int) -> int:
    """u (a scalar) -> Dense(film_hidden) -> GELU -> Dense(2 * width) = [gamma, beta]."""
    return _dense(1, film_hidden) + _dense(film_hidden, 2 * width)


def _config(sizes=(17, 11), film_hidden=7):
    config = film_evi.get_config()
    config.unlock()
    config.critic.hidden_sizes, config.critic.film_hidden_size = sizes, film_hidden
    return config


def test_cpu_counts_match_a_count_by_hand_of_the_critic():
    counts = overhead.parameter_counts(_config())
    width = 40  # the tiny Llama's hidden size (models/config.py: tiny)
    assert counts["without_evi"]["params_critic"] == _value_head(width, (17, 11))
    assert counts["with_evi"]["params_critic"] == _value_head(width, (17, 11)) + _film(width, 7)
    assert counts["evi_extra_params"] == _film(width, 7) == 1 * 7 + 7 + 7 * 80 + 80
    assert (
        counts["with_evi"]["params_total"] - counts["without_evi"]["params_total"]
        == counts["evi_extra_params"]
    )
    # the policy is the same in both arms: only the critic differs
    policy = counts["with_evi"]["params_total"] - counts["with_evi"]["params_critic"]
    assert policy == counts["without_evi"]["params_total"] - counts["without_evi"]["params_critic"] > 0
    assert counts["with_evi"]["params_trainable"] < counts["with_evi"]["params_total"]


@pytest.mark.slow
def test_openvla_7b_evi_share_is_below_a_tenth_of_a_percent():
    paper = config_base.rl(config_base.parse_arg("paper", **config_base.PRESET_ARGS))
    counts = overhead.parameter_counts(paper)
    extra = _film(4096, 64)
    assert counts["evi_extra_params"] == extra == 532_608
    assert paper.critic.rl4vla_head
    head = _value_head(4096, (512, 128), last_bias=False)
    assert counts["with_evi"]["params_critic"] == head + extra
    assert 7.0e9 < counts["without_evi"]["params_total"] < 8.0e9
    assert 0 < counts["evi_extra_share"] < 1e-3


@pytest.mark.slow
def test_cpu_report_has_the_schema_and_measures_both_arms():
    config = _config()
    config.env.max_episode_steps = 3
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = 3, 2
    report = overhead.measure_cpu(config, repeats=2)
    for arm in ("with_evi", "without_evi"):
        m = report[arm]
        assert set(m) >= {
            "params_total",
            "params_trainable",
            "update_compiled_bytes",
            "policy_ms",
            "update_ms",
        }
        assert m["policy_ms"] > 0 and m["update_ms"] > 0
        memory = m["update_memory"]
        assert (
            m["update_compiled_bytes"]
            == memory["argument"] + memory["output"] + memory["temp"] - memory["alias"]
        )
        assert memory["argument"] >= 4 * m["params_total"]  # the float32 state is an argument
    assert isinstance(report["evi_extra_params"], int) and report["evi_extra_params"] == _film(40, 7)
    table = overhead.markdown_table({"cpu": report})
    assert f"| cpu | with_evi | {report['with_evi']['params_total']:,} |" in table


def test_the_command_refuses_an_out_folder_that_does_not_exist(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "no_such_folder" / "overhead.json"
    done = subprocess.run(
        [sys.executable, "-m", "rl2vla_jax.measure_overhead", "--config=configs/film_evi.py", f"--out={missing}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert (
        done.returncode == 2
        and done.stderr.startswith("error: --out=")
        and len(done.stderr.splitlines()) == 1
    )
    assert not missing.parent.exists()
