"""Every config file and preset loads; the config argument parser; which sections each job has."""

import glob
import importlib
import os

import pytest

from rl2vla_jax import config_base
from rl2vla_jax.models import config as model_config_lib
from rl2vla_jax.models import critics
from rl2vla_jax.policy import loading
from rl2vla_jax.train import hparams
from rl2vla_jax.validation import CONFIG_PRESETS, CRITICS, MODEL_PRESETS, ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RL = ["default", "ppo_no_evi", "entropy_concat", "value_loss_weighting", "film_evi", "grpo"]
ALL = [*RL, "sft", "eval"]
COMMON = {"name", "seed", "init_from", "adapter", "unnorm_key", "model", "lora", "trainable", "env", "mesh"}
RL_ONLY = {"algorithm", "grpo_group_size", "grpo", "resume", "critic", "rollout", "ppo", "train"}


def _load(name, arg=None):
    return importlib.import_module(f"configs.{name}").get_config(arg)


def test_every_config_file_is_tested():
    names = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "[!_]*.py"))}
    assert names == set(ALL)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("arg", [None, "", "cpu", "paper", "paper,seed=7"])
def test_every_config_and_preset_loads_locked_and_valid(name, arg):
    config = _load(name, arg)
    assert config.is_locked
    with pytest.raises(AttributeError):
        config.model.presets = "tiny"  # a misspelt key is an error
    config_base.validate_common(config)
    if name in RL:
        hparams.validate(config)
    paper = arg is not None and "paper" in arg
    assert config.model.preset == ("openvla_7b" if paper else "tiny")
    assert (config.env.num_envs, config.lora.rank) == ((64, 32) if paper else (2, 8))
    assert config.seed == (7 if arg and "seed=7" in arg else 0)


def test_cpu_is_the_explicit_default():
    for name in ALL:
        assert _load(name, "cpu").to_dict() == _load(name).to_dict(), name


@pytest.mark.parametrize("name", RL)
def test_rl_configs_have_every_section(name):
    config = _load(name)
    assert COMMON | RL_ONLY | {"optim", "eval"} == set(config.keys())
    assert set(config.eval.keys()) == {"temperature"}  # the trainer's periodic evaluation


def test_sft_and_eval_configs_lack_rl_only_sections():
    sft = _load("sft")
    assert set(sft.keys()) == COMMON | {"data_dir", "val_fraction", "sft", "optim", "collect"}
    assert set(sft.optim.keys()) == {"weight_decay", "max_grad_norm"}
    evaluation = _load("eval")
    assert set(evaluation.keys()) == COMMON | {"eval"}
    assert set(evaluation.eval.keys()) == {"temperature", "seeds", "episodes", "videos_per_setting"}
    with pytest.raises(ConfigError, match="no `ppo` section"):
        hparams.validate(sft)


def test_one_eval_temperature_for_trainer_and_eval():
    assert _load("film_evi").eval.temperature == _load("eval").eval.temperature == 0.6
    assert "eval_temperature" not in _load("film_evi").rollout
    config = _load("film_evi")
    config.eval.temperature = -0.1
    with pytest.raises(ConfigError, match="eval.temperature=-0.1 must be >= 0"):
        hparams.validate(config)


def test_reach_shaping_is_off_unless_asked_and_only_for_our_suite():
    config = _load("film_evi", "experiment")
    assert config.env.reach_shaping == 0.0  # RL4VLA's reward
    config.env.reach_shaping = -1.0
    with pytest.raises(ConfigError, match="env.reach_shaping=-1.0 must be >= 0"):
        hparams.validate(config)
    config.env.reach_shaping, config.env.suite = 1.0, "rl4vla"
    with pytest.raises(ConfigError, match="reward of the suite 'ours'"):
        hparams.validate(config)
    config.env.suite = "ours"
    hparams.validate(config)


def test_experiment_differences():
    assert _load("ppo_no_evi").critic.name == "value_head"
    assert _load("entropy_concat").critic.name == "entropy_concat"
    assert _load("value_loss_weighting").ppo.value_loss_entropy_coef == 0.5
    assert _load("film_evi").ppo.value_loss_entropy_coef == 0.0
    assert _load("film_evi").critic.name == "film_evi"
    grpo, same_state = _load("grpo"), _load("grpo", "same_state")
    assert (grpo.algorithm, grpo.grpo_group_size) == ("grpo", 2)
    assert (same_state.algorithm, same_state.name) == ("grpo_s", "grpo_s")
    paper_same_state = _load("grpo", "paper,same_state")
    assert (paper_same_state.algorithm, paper_same_state.grpo_group_size) == ("grpo_s", 8)
    assert _load("sft", "paper").sft.learning_rate == 5e-4 and _load("sft").sft.learning_rate == 3e-3
    assert _load("eval", "paper").eval.seeds == (0, 1, 2) and _load("eval").eval.episodes == 2


def test_paper_hyperparameters_match_rl4vla():
    hp = hparams.rl_hparams(_load("film_evi", "paper"))
    ppo = (hp.gamma, hp.gae_lambda, hp.clip_eps, hp.value_clip_eps, hp.huber_delta)
    assert ppo == (0.99, 0.95, 0.2, 0.2, 10.0)
    assert (hp.epochs, hp.minibatch_size, hp.grad_accum_steps, hp.temperature) == (1, 8, 20, 1.0)
    c = _load("film_evi", "paper")
    optim = (c.optim.actor_lr, c.optim.critic_lr, c.optim.weight_decay, c.optim.max_grad_norm)
    assert optim == (1e-4, 3e-3, 0.01, 10.0)
    assert c.env.max_episode_steps == 80 and (c.env.num_envs * 80) // (8 * 20) == 32  # optimizer steps
    assert not hp.detach_hidden and hparams.rl_hparams(_load("film_evi", "experiment")).detach_hidden


@pytest.mark.parametrize(
    "arg, expected",
    [
        (None, dict(flag=False, count=3, rate=0.5, word="a")),
        ("flag", dict(flag=True, count=3, rate=0.5, word="a")),
        (" flag = false , count=11", dict(flag=False, count=11, rate=0.5, word="a")),
        ("flag=True,rate=2e-3,word=paper,", dict(flag=True, count=3, rate=2e-3, word="paper")),
        ("count=-17,count=13", dict(flag=False, count=13, rate=0.5, word="a")),  # the last one wins
    ],
)
def test_parse_arg_casts_to_the_default_type(arg, expected):
    parsed = config_base.parse_arg(arg, flag=False, count=3, rate=0.5, word="a")
    assert dict(parsed) == expected
    assert [type(parsed[k]) for k in expected] == [bool, int, float, str]


@pytest.mark.parametrize(
    "arg, message",
    [
        ("nonsense", "unknown config argument 'nonsense'; valid: flag, count"),
        ("flag,colour=red", "unknown config argument 'colour'; valid: flag, count"),
        ("count", "config argument 'count' needs a value: count=3"),
        ("count=2.5", "config argument count='2.5' must be int"),
        ("flag=maybe", "config argument flag='maybe' must be true or false"),
    ],
)
def test_parse_arg_errors_are_one_line(arg, message):
    with pytest.raises(ConfigError) as error:
        config_base.parse_arg(arg, flag=False, count=3)
    assert str(error.value) == message


def test_presets_exclude_each_other_and_unknown_presets_list_the_valid_keys():
    with pytest.raises(ConfigError, match="config presets cpu and paper exclude each other"):
        _load("film_evi", "cpu,paper")
    with pytest.raises(
        ConfigError, match="unknown config argument 'papr'; valid: cpu, paper, experiment, seed"
    ):
        _load("film_evi", "papr")
    with pytest.raises(ConfigError, match="valid: same_state, cpu, paper, experiment, seed"):
        _load("grpo", "same")


def test_invalid_choices_are_one_line_errors():
    config = _load("film_evi")
    config.critic.name = "q_function"
    with pytest.raises(ConfigError, match="choose one of: value_head, entropy_concat, film_evi"):
        hparams.validate(config)
    config = _load("film_evi")
    config.model.remat = "some"
    with pytest.raises(ConfigError, match="model.remat='some' is not valid; choose one of: none, full,"):
        hparams.validate(config)
    config = _load("film_evi")
    config.model.scan_unroll = 0
    with pytest.raises(ConfigError, match="config.model.scan_unroll=0 must be >= 1"):
        hparams.validate(config)
    config = _load("film_evi")
    config.ppo.minibatch_size = 7
    with pytest.raises(ConfigError, match="does not split"):
        hparams.validate(config)


def test_pipeline_groups_divide_the_envs_on_the_cpu_backend():
    config = _load("film_evi")
    config.env.num_envs, config.env.max_episode_steps = 6, 20
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = 5, 2
    config.env.pipeline_groups = 3
    hparams.validate(config)
    config.env.pipeline_groups = 4
    with pytest.raises(ConfigError, match="pipeline_groups=4 must be >= 1 and divide config.env.num_envs=6"):
        hparams.validate(config)
    config.env.pipeline_groups = 0
    with pytest.raises(ConfigError, match="pipeline_groups=0 must be >= 1"):
        hparams.validate(config)
    config.env.pipeline_groups, config.env.backend = 2, "gpu"
    with pytest.raises(ConfigError, match="pipeline_groups=2 needs env.backend='cpu'"):
        config_base.validate_common(config)
    evaluation = _load("eval")
    evaluation.env.pipeline_groups = 3
    with pytest.raises(ConfigError, match="divide config.env.num_envs=2"):
        config_base.validate_common(evaluation)


def test_choice_names_match_what_the_models_build():
    assert set(CRITICS) == set(critics.CRITICS)
    assert set(MODEL_PRESETS) == set(model_config_lib.PRESETS)
    assert CONFIG_PRESETS == ("cpu", "paper", "experiment")
    assert set(config_base.PRESET_ARGS) == {"cpu", "paper", "experiment", "seed"}


def test_small_2layer_preset_is_small_with_one_llama_layer_fewer():
    small, smaller = model_config_lib.get_preset("small"), model_config_lib.get_preset("small_2layer")
    assert (small.llm.num_layers, smaller.llm.num_layers) == (3, 2)
    assert smaller.replace(llm=small.llm) == small  # towers, projector, vocabulary, LoRA unchanged


def test_every_config_file_has_a_runnable_docstring():
    for path in glob.glob(os.path.join(ROOT, "configs", "[!_]*.py")):
        name = os.path.basename(path)
        text = open(path).read()
        assert text.startswith('"""'), name
        assert "Run:" in text, name
        if name != "default.py":
            assert "Hardware:" in text and "Expect:" in text, name
        assert "import configs" not in text and "from configs" not in text, name  # thin: on config_base


def test_the_package_never_imports_the_repo_root_configs():
    """setup.py installs rl2vla_jax only: an import of configs/ would break an installed copy."""
    for folder, _, files in os.walk(os.path.join(ROOT, "rl2vla_jax")):
        for name in (n for n in files if n.endswith(".py")):
            lines = open(os.path.join(folder, name)).read().splitlines()
            assert not [s for s in lines if s.strip().startswith(("import configs", "from configs"))], name


def test_experiment_preset_is_one_cpu_recipe_for_every_stage():
    """`:experiment` (experiments/cpu.sh): SFT, RL and evaluation agree on the model and on the
    conditions the policy is trained and evaluated under."""
    configs = {name: _load(name, "experiment,seed=2") for name in ("sft", "film_evi", "grpo", "eval")}
    for config in configs.values():
        assert config.model.preset == "small" and config.seed == 2
        # Unrolled like this, whether the model comes from the preset or from a checkpoint.
        assert loading.model_config(config).scan_unroll == config.model.scan_unroll == 4
        assert loading.model_config(config, model_config_lib.small()).scan_unroll == 4
        assert config_base.env_conditions(config) == {
            "image_size": 64,
            "max_episode_steps": 40,
            "camera": "close",
            "layout": "narrow",
        }
    assert configs["sft"].sft.train_all_params and configs["sft"].collect.expert_step == 0.04
    assert configs["film_evi"].env.num_envs * 40 % configs["film_evi"].ppo.minibatch_size == 0
    assert configs["eval"].eval.seeds == (0, 1, 2) and configs["eval"].eval.episodes >= 16
    with pytest.raises(ConfigError, match="config presets paper and experiment exclude each other"):
        _load("sft", "paper,experiment")


def test_rl4vla_recipes_as_presets():
    """RL4VLA's README: warm-up (finetune.py --lora_rank 32 --batch_size 8 on 4 GPUs
    --max_steps 2000 --learning_rate 5e-4 --image_aug True), merge, SFT (60000 steps,
    --image_aug False, from the merged warm-up); PPO from scratch = no --vla_load_path."""
    warmup, sft = _load("sft", "paper_warmup"), _load("sft", "paper")
    for c in (warmup, sft):
        assert (c.model.preset, c.lora.rank, c.lora.alpha) == ("openvla_7b", 32, 16.0)
        assert (c.sft.learning_rate, c.sft.batch_size, c.env.image_size) == (5e-4, 32, 224)
        config_base.validate_common(c)
    assert (warmup.sft.steps, warmup.sft.augment, warmup.init_from) == (
        2000,
        True,
        config_base.OPENVLA_7B_DIR,
    )
    assert (sft.sft.steps, sft.sft.augment, sft.init_from) == (60000, False, config_base.WARMUP_MERGED_DIR)
    assert warmup.data_dir != sft.data_dir
    with pytest.raises(ConfigError, match="paper_warmup and paper exclude each other"):
        _load("sft", "paper_warmup,paper")
    scratch = _load("ppo_no_evi", "paper,scratch")
    assert (scratch.init_from, scratch.critic.name, scratch.algorithm) == (
        config_base.OPENVLA_7B_DIR,
        "value_head",
        "ppo",
    )
    assert _load("ppo_no_evi", "paper").init_from == "" and _load("ppo_no_evi", "scratch").init_from == ""
    hparams.validate(scratch)
    assert _load("film_evi", "paper").ppo.bootstrap_truncation is False
    assert (
        _load("film_evi", "paper").critic.rl4vla_head is True
        and _load("film_evi").critic.rl4vla_head is False
    )
