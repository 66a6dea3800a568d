import glob
import os
import subprocess
import sys

import pytest
from ml_collections import config_flags  # noqa: F401  (the loader the entry points use)

from configs import default
from rl2vla_jax.train import hparams

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPERIMENTS = ["ppo_no_evi", "entropy_concat", "value_loss_weighting", "film_evi", "grpo", "sft", "eval"]


def _load(name, arg=None):
    import importlib

    module = importlib.import_module(f"configs.{name}")
    return module.get_config(arg)


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.parametrize("arg", [None, "paper"])
def test_every_config_loads_validates_and_is_locked(name, arg):
    config = _load(name, arg)
    hparams.validate(config)
    assert config.is_locked
    with pytest.raises(AttributeError):
        config.ppo.clip_epsilon = 0.1  # a misspelt key is an error
    if arg == "paper":
        assert config.model.preset == "openvla_7b" and config.env.num_envs == 64
        assert config.env.max_episode_steps == 80 and config.lora.rank == 32


def test_experiment_differences():
    assert _load("ppo_no_evi").critic.name == "value_head"
    assert _load("entropy_concat").critic.name == "entropy_concat"
    assert _load("value_loss_weighting").ppo.value_loss_entropy_coef > 0
    assert _load("film_evi").critic.name == "film_evi"
    assert _load("grpo").algorithm == "grpo" and _load("grpo", "same_state").algorithm == "grpo_s"


def test_paper_hyperparameters_match_rl4vla():
    hp = hparams.rl_hparams(_load("film_evi", "paper"))
    assert (hp.gamma, hp.gae_lambda, hp.clip_eps, hp.value_clip_eps, hp.huber_delta) == (
        0.99,
        0.95,
        0.2,
        0.2,
        10.0,
    )
    assert (hp.epochs, hp.minibatch_size, hp.grad_accum_steps) == (1, 8, 20)
    c = _load("film_evi", "paper")
    assert (c.optim.actor_lr, c.optim.critic_lr, c.optim.weight_decay, c.optim.max_grad_norm) == (
        1e-4,
        3e-3,
        0.01,
        10.0,
    )
    assert 64 * 80 // (8 * 20) == 32  # optimizer steps per iteration, as RL4VLA


def test_unknown_preset_and_choices_are_one_line_errors():
    with pytest.raises(ValueError, match="valid presets: cpu, paper"):
        default.parse_presets("nonsense")
    config = _load("film_evi")
    with config.unlocked():
        config.critic.name = "q_function"
    with pytest.raises(hparams.ConfigError, match="choose one of: value_head, entropy_concat, film_evi"):
        hparams.validate(config)
    config = _load("film_evi")
    config.ppo.minibatch_size = 7
    with pytest.raises(hparams.ConfigError, match="does not split"):
        hparams.validate(config)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config=configs/bogus.py"], "config file configs/bogus.py does not exist"),
        (
            ["--config=configs/film_evi.py:nonsense"],
            "unknown config preset 'nonsense'; valid presets: cpu, paper",
        ),
        (["--config=configs/film_evi.py", "--config.algorithm=a2c"], "choose one of: ppo, grpo, grpo_s"),
        (["--config=configs/film_evi.py", "--config.ppo.clip_ep=1"], 'Did you mean "clip_eps"'),
    ],
)
def test_train_cli_rejects_bad_input_with_one_line(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "rl2vla_jax.train", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and lines[0].startswith("error: ")


def test_every_config_file_has_a_runnable_docstring():
    for path in glob.glob(os.path.join(ROOT, "configs", "*.py")):
        name = os.path.basename(path)
        if name.startswith("_"):
            continue
        text = open(path).read()
        assert '"""' in text.splitlines()[0], name
        if name != "default.py":
            assert "Run:" in text and "Hardware:" in text and "Expect:" in text, name
