"""The configs every job starts from: one common base and the RL, SFT and eval bases on top.

    common      name, seed, init_from, adapter, unnorm_key, model, lora, trainable, env, mesh
    rl          + algorithm, grpo_group_size, resume, critic, rollout, ppo, optim, train, eval.temperature
    sft         + data_dir, val_fraction, sft, optim (weight decay, grad clip), collect
    evaluation  + eval (temperature, seeds, episodes, videos)

They live in the package (not in the repo-root configs/, which setup.py does not install) so
that no module of the package imports configs/; each configs/*.py file is a few lines on top
of one of these. Each base takes the parsed config argument (`parse_arg`), so that a
section's `paper` values sit beside its CPU defaults:
  (none) / cpu   tiny random OpenVLA, CPU simulator, 2 workers, short episodes (2 CPU cores).
  paper          OpenVLA-7B with RL4VLA's hyper-parameters (REFERENCE s.2): 64 envs x 80
                 steps, GPU simulator, LoRA r32/alpha16, value lr 3e-3, LoRA lr 1e-4.
"""

from __future__ import annotations

import os

import ml_collections

from rl2vla_jax.models.config import DEFAULT_LORA_TARGETS
from rl2vla_jax.validation import (
    CAMERAS,
    CONFIG_PRESETS,
    ENV_BACKENDS,
    LAYOUTS,
    MODEL_PRESETS,
    PARAM_DTYPES,
    REMAT_POLICIES,
    ConfigError,
    check_choice,
    check_pipeline_groups,
)

# The config argument every config file accepts; a file may add its own (grpo: same_state).
PRESET_ARGS = {**{name: False for name in CONFIG_PRESETS}, "seed": 0}
EVAL_TEMPERATURE = 0.6  # RL4VLA evaluates by sampling at 0.6 (rollouts use 1.0)
# Where RL4VLA's recipe (configs/sft.py, configs/ppo_no_evi.py docstrings) keeps its stages:
# `python -m rl2vla_jax.convert_openvla --out=` of openvla/openvla-7b, and the merged warm-up.
OPENVLA_7B_DIR = "runs/openvla-7b"
WARMUP_MERGED_DIR = "runs/warmup_merged"

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def _cast(key: str, text: str, default):
    """`text` as the type of `default` (the spec value names the type, as big_vision's parse_arg)."""
    if isinstance(default, bool):  # before int: bool is an int
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ConfigError(f"config argument {key}={text!r} must be true or false")
    try:
        return type(default)(text)
    except ValueError:
        raise ConfigError(f"config argument {key}={text!r} must be {type(default).__name__}") from None


def parse_arg(arg: str | None, **spec) -> ml_collections.FrozenConfigDict:
    """The `:arg` of `--config=file.py:arg` as typed values, defaults from `spec`.

    'paper,seed=3' -> paper=True, seed=3: comma-separated `key=value`, a bare word sets a
    boolean to True, each value is cast to its default's type. An unknown key is one
    ConfigError line that lists the valid ones.
    """
    values = dict(spec)
    for item in (arg or "").split(","):
        key, sep, text = (part.strip() for part in item.partition("="))
        if not key:
            continue
        if key not in spec:
            raise ConfigError(f"unknown config argument {key!r}; valid: {', '.join(spec)}")
        if not sep and not isinstance(spec[key], bool):
            raise ConfigError(f"config argument {key!r} needs a value: {key}={spec[key]!r}")
        values[key] = _cast(key, text, spec[key]) if sep else True
    presets = [name for name in CONFIG_PRESETS if values.get(name)]
    if len(presets) > 1:
        raise ConfigError(f"config presets {' and '.join(presets)} exclude each other; choose one")
    return ml_collections.FrozenConfigDict(values)


def locked(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Locked, so that a misspelt `--config.x.y=` is an error instead of a new key."""
    c.lock()
    return c


def common(arg) -> ml_collections.ConfigDict:
    """The sections every job reads (the model it builds or loads, the simulator, the mesh)."""
    c = ml_collections.ConfigDict()
    c.name = "default"
    c.seed = arg.seed
    # A converted OpenVLA or an SFT checkpoint; RL resumes its workdir or `resume` first.
    c.init_from = ""
    c.adapter = ""  # optional PEFT adapter dir applied on top of init_from
    c.unnorm_key = ""  # which dataset's action statistics un-normalise actions ("" = the only one)

    c.model = ml_collections.ConfigDict()
    c.model.preset = "tiny"  # one of validation.MODEL_PRESETS
    c.model.param_dtype = "float32"  # one of validation.PARAM_DTYPES
    c.model.remat = "none"  # one of validation.REMAT_POLICIES
    c.model.scan_unroll = 1  # layers per step of the scanned layer stacks (>= depth: no loop)
    # Random init only (a checkpoint brings its own weights): see models/init.init_params.
    c.model.init_position_std = 0.02
    c.model.init_layer_scale = 1e-5
    c.model.max_prompt_tokens = 48  # prompts are padded to this: one compiled shape for all instructions

    c.lora = ml_collections.ConfigDict()
    c.lora.rank = 8
    c.lora.alpha = 16.0
    # Regexes over '/'-joined module paths: what OpenVLA's fine-tuning adapts (every Linear incl.
    # lm_head, and the patch-embedding convs; see models/config.py).
    c.lora.targets = list(DEFAULT_LORA_TARGETS)
    # Regexes over '/'-joined param paths: what the actor's optimizer updates (the LoRA factors).
    c.trainable = [r"lora_(a|b)$"]

    c.env = ml_collections.ConfigDict()
    c.env.suite = "ours"
    c.env.setting = "train"
    c.env.backend = "cpu"  # "cpu": worker processes; "gpu": one batched ManiSkill env
    c.env.num_envs = 2
    c.env.max_episode_steps = 20  # the expert needs ~10-16 steps to succeed; shorter cannot
    c.env.image_size = 224  # camera resolution (square); the model resizes to its own size
    c.env.camera = "wide"  # "wide" | "close" (tighter framing for small images)
    c.env.layout = "full"  # "full" | "narrow" (ID settings) | "narrow_all" (every setting): object and plate spread
    c.env.step_timeout_s = 60.0  # cpu backend: a simulator worker silent this long in a step is restarted
    # cpu backend: k > 1 runs the envs in k groups, the policy acting for one group while the
    # simulator steps the others (docs/performance.md, pipelined rollouts); 1 = sequential.
    c.env.pipeline_groups = 1

    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1  # -1: all remaining devices
    c.mesh.fsdp = 1
    # Arrays smaller than this are replicated: splitting them costs more than it saves.
    c.mesh.fsdp_min_size = 2**18

    if arg.experiment:  # the CPU experiment (experiments/cpu.sh, docs/results/cpu.md)
        c.model.preset = "small"
        c.model.init_position_std, c.model.init_layer_scale = 1.0, 0.1  # learnt from scratch
        c.model.scan_unroll = 4  # all layers unrolled: SFT steps ~10% faster on CPU (exp21, cpu.md)
        c.env.image_size = 64
        c.env.max_episode_steps = EXPERIMENT_HORIZON
        c.env.camera = "close"
        c.env.layout = "narrow"
    if arg.paper:
        c.model.preset = "openvla_7b"
        c.model.param_dtype = "bfloat16"
        c.model.remat = "dots"
        c.lora.rank, c.lora.alpha = 32, 16.0
        c.env.backend = "gpu"
        c.env.num_envs = 64
        c.env.max_episode_steps = 80
        c.mesh.fsdp = -1
        c.mesh.data = 1
    return c


# The CPU experiment's episode length: its 4 cm/step expert needs ~20-22 steps; the rest is
# holding still (demonstrations record 10 such steps after the success).
EXPERIMENT_HORIZON = 40


def _eval_temperature() -> ml_collections.ConfigDict:
    """The one evaluation temperature key, read by the trainer's periodic evaluation and by
    `python -m rl2vla_jax.eval` alike."""
    return ml_collections.ConfigDict({"temperature": EVAL_TEMPERATURE})


def rl(arg) -> ml_collections.ConfigDict:
    """`python -m rl2vla_jax.train`: PPO with a critic, or GRPO."""
    c = common(arg)
    c.algorithm = "ppo"  # one of validation.ALGORITHMS
    c.grpo_group_size = 2  # envs per GRPO group; "grpo_s" also gives each group one initial state
    c.grpo = ml_collections.ConfigDict()
    c.grpo.advantage = "group"  # one of validation.GRPO_ADVANTAGES ("buffer_rewards": RL4VLA's)
    # buffer_rewards: standardise only the non-zero rewards (RL4VLA's --alg_grpo_fix, its default)
    c.grpo.nonzero_rewards_only = True
    c.grpo.same_init = "group"  # one of validation.SAME_INIT: who shares an initial state under grpo_s
    c.resume = ""  # a run directory to continue (after the workdir's own checkpoint, before init_from)

    c.critic = ml_collections.ConfigDict()
    c.critic.name = "film_evi"  # one of validation.CRITICS; algorithm=grpo uses none
    c.critic.hidden_sizes = (512, 128)
    c.critic.film_hidden_size = 64
    c.critic.descriptor_mode = "mean"  # one of validation.DESCRIPTOR_MODES, over the 7 token entropies
    # One of validation.DESCRIPTOR_TOKENS: "first" = u is H_1, which the state alone decides, so
    # V stays a baseline; "all" lets the sampled action move V (measured in docs/evi.md).
    c.critic.descriptor_tokens = "first"
    c.critic.detach_descriptor = True
    c.critic.detach_hidden = False  # True: value loss stops at the critic; False (RL4VLA): moves LoRA too
    # True: RL4VLA's ValueHead (last layer without bias, N(0, 0.02); hidden layers Kaiming-normal
    # fan_out with zero bias); False: Flax's default Dense init and a biased last layer.
    c.critic.rl4vla_head = False

    c.rollout = ml_collections.ConfigDict()
    c.rollout.temperature = 1.0
    c.rollout.episodes_per_env = 1  # played in turn; one update over all (samples without more workers)
    c.env.reach_shaping = 0.0  # w of PutOnPlateEnv's reach potential (suite "ours", training env); 0 = RL4VLA's

    c.ppo = ml_collections.ConfigDict()
    c.ppo.gamma = 0.99
    c.ppo.gae_lambda = 0.95
    c.ppo.clip_eps = 0.2
    c.ppo.value_clip_eps = 0.2
    c.ppo.huber_delta = 10.0
    c.ppo.value_loss_coef = 1.0
    c.ppo.value_loss_entropy_coef = 0.0  # c of the entropy-weighted value loss (1 + c*H); 0 = off
    c.ppo.normalize_advantages = True
    # True: bootstrap V(s_T) at the time limit (a truncation is not a termination); False:
    # RL4VLA's mask = 0 at the 80-step limit, nothing bootstrapped.
    c.ppo.bootstrap_truncation = True
    # PPO's ratio: "action" (one of the whole action) or "token" (one per token, each clipped);
    # the surrogate's 7 token columns averaged ("mean") or summed ("sum"). RL4VLA = action + sum:
    # its buffer holds the action's log-prob in all 7 columns, so its loss is 7x ours.
    c.ppo.ratio = "action"
    c.ppo.token_reduction = "mean"
    c.ppo.epochs, c.ppo.minibatch_size, c.ppo.grad_accum_steps = 1, 5, 2

    c.optim = ml_collections.ConfigDict()
    c.optim.actor_lr, c.optim.critic_lr, c.optim.weight_decay, c.optim.max_grad_norm = 1e-4, 3e-3, 0.01, 10.0
    c.optim.actor_frozen_iterations = 0  # first N updates train the critic only (policy, its Adam kept)

    c.train = ml_collections.ConfigDict()
    c.train.iterations = 3
    c.train.log_every = 1
    c.train.checkpoint_every = 1
    c.train.eval_every = 0  # 0 = never; at eval.temperature
    c.train.eval_episodes = 2
    # OOD settings of env.suite evaluated beside the ID one every eval_every iterations (a video each).
    c.train.eval_settings = ()
    c.train.video_every = 0
    c.train.use_wandb = False
    # Per-sample records (<workdir>/records/, rl2vla_jax/policy/records.py) every N iterations; 0 = off.
    c.train.diagnostics_every = 1

    c.eval = _eval_temperature()

    if arg.experiment:
        c.env.num_envs = 8  # 8 simulator processes: 320 transitions per iteration
        # Measured from the SFT policy (docs/results/cpu.md, exp6/exp7): lr 3e-4 x 2 epochs took
        # success 16% -> 4% in 30 iterations, 3e-4 x 1 epoch 19% -> 10% in 60; this step (approx.
        # KL ~5e-4 per iteration) left it at 18%. None has raised it yet.
        c.ppo.minibatch_size, c.ppo.grad_accum_steps, c.ppo.epochs = 40, 1, 1
        c.optim.actor_lr = 1e-4
        c.critic.hidden_sizes, c.critic.film_hidden_size = (128, 64), 32
        c.critic.detach_hidden = True  # exp10, lr 3e-4: shared 19% -> 10%, detached 18% (1 run each)
        c.train.iterations = 300
        c.train.checkpoint_every = 10
    if arg.paper:
        c.ppo.minibatch_size = 8
        c.ppo.grad_accum_steps = 20
        c.ppo.bootstrap_truncation = False
        c.ppo.token_reduction = "sum"
        c.critic.rl4vla_head = True
        c.train.iterations, c.train.checkpoint_every = 300, 10
        c.train.eval_every, c.train.eval_episodes = 10, 64
        c.train.video_every = 20
        c.train.diagnostics_every = 10
    return c


def sft(arg) -> ml_collections.ConfigDict:
    """`python -m rl2vla_jax.sft` (behaviour cloning) and `python -m rl2vla_jax.collect_demos`."""
    c = common(arg)
    c.name = "sft"
    c.data_dir = "demos/train"
    c.val_fraction = 0.1  # of episodes, held out for validation loss and token accuracy
    c.env.image_size = 64  # camera resolution of collected demos (the tiny model reads 28 px)

    c.sft = ml_collections.ConfigDict()
    c.sft.learning_rate = 3e-3  # the tiny random model; `:paper` uses OpenVLA's 5e-4
    c.sft.batch_size = 8
    c.sft.warmup_steps = 0  # linear ramp of the updates over the first steps (0 = none, as OpenVLA)
    c.sft.steps = 200
    c.sft.lr_schedule = "constant"  # or "cosine": after the warm-up, a half cosine to 0 at sft.steps
    c.sft.eval_every = 50  # also the interval of training-metric logs
    c.sft.checkpoint_every = 100  # <workdir>/checkpoints/<step>; the last 3 are kept
    c.sft.eval_batch_size = 16
    c.sft.val_max_examples = 512  # validation steps kept in memory (evenly spaced over held-out episodes)
    # True: every parameter trains (not only config.trainable, the LoRA factors); for the tiny
    # random model, whose frozen random base LoRA alone adapts slowly. The checkpoint then holds
    # the fine-tuned base and LoRA factors; RL continues with config.trainable as usual.
    c.sft.train_all_params = False
    c.sft.augment = False  # random resized crop + colour jitter, as OpenVLA's image_aug
    c.sft.num_threads = 4  # grain reader threads (decode, augment, tokenise ahead of the device)
    c.sft.num_workers = 0  # grain worker processes on top of the threads (0 = none)

    c.optim = ml_collections.ConfigDict()
    c.optim.weight_decay = 0.01
    c.optim.max_grad_norm = 10.0

    c.collect = ml_collections.ConfigDict()
    c.collect.num_episodes = 50
    c.collect.num_workers = 2
    c.collect.hold_steps = 2  # steps recorded after a stable success (the expert hovering)
    c.collect.action_noise = 0.0  # metres of Gaussian noise on executed translations (DART)
    c.collect.expert_step = 0.1  # metres the expert moves per step and axis (the controller's limit)

    if arg.experiment:
        c.data_dir = "demos/experiment"
        # Measured on the 4 cm demonstrations (docs/results/cpu.md): with the experiment's init
        # (model.init_*), a 200-step ramp and a clip at 1 act above the majority bin in every
        # dimension by step 750 (lr 3e-4); lr 1e-3 from step 0 with the default init stays near it.
        c.sft.learning_rate = 6e-4  # the cosine's peak (exp14/exp17; exp16's 1e-3 did no better)
        c.sft.warmup_steps = 200
        c.optim.max_grad_norm = 1.0
        c.sft.batch_size = 16
        # exp24-exp33: 28-52% in 6500 cosine steps (4500: 27%); 21-31 min with demos, 2-core AMD EPYC
        c.sft.steps, c.sft.lr_schedule = 6500, "cosine"
        c.sft.eval_every = 500
        c.sft.checkpoint_every = 1000
        c.sft.train_all_params = True  # a random base: LoRA alone adapts too slowly
        c.collect.num_episodes = 800  # 300 gave 19% (exp7; validation loss flat from step 3500)
        c.collect.hold_steps = 10  # teach holding still once the object is placed
        # 4 cm per step, not the controller's 10: mostly saturated actions (which way to move)
        # that a small policy clones, instead of one exact jump per phase (docs/results/cpu.md).
        c.collect.expert_step = 0.04
    if arg.paper:  # RL4VLA's SFT (README "SFT"): 4 GPUs x batch 8, from the merged warm-up
        c.init_from = WARMUP_MERGED_DIR
        c.env.image_size = 224
        c.sft.learning_rate = 5e-4
        c.sft.batch_size = 32
        c.sft.steps = 60000
        c.sft.eval_every, c.sft.checkpoint_every = 200, 5000
        c.sft.val_max_examples = 4096
        c.sft.augment = False
        c.sft.num_threads = 16
        c.sft.num_workers = 4
        c.collect.num_episodes = 16000
    return c


def evaluation(arg) -> ml_collections.ConfigDict:
    """`python -m rl2vla_jax.eval`: every setting of a suite, seeds x episodes each."""
    c = common(arg)
    c.name = "eval"
    # The scripted expert needs ~15 steps for the task; 30 leaves a policy room for mistakes.
    c.env.max_episode_steps = 30
    c.env.image_size = 64  # the tiny model reads 28 px; 64 keeps videos watchable
    c.eval = _eval_temperature()
    c.eval.seeds = (0,)
    c.eval.episodes = 2
    c.eval.videos_per_setting = 1
    if arg.experiment:
        c.env.max_episode_steps = EXPERIMENT_HORIZON
        c.env.num_envs = 4
        c.eval.seeds = (0, 1, 2)
        c.eval.episodes = 16
    if arg.paper:
        c.env.max_episode_steps = 80
        c.env.image_size = 224
        c.eval.seeds = (0, 1, 2)
        c.eval.episodes = 64
        c.eval.videos_per_setting = 2
    return c


def validate_common(config) -> None:
    """Raise ConfigError (one line) for an invalid choice in the sections every job shares."""
    check_choice("config.model.preset", config.model.preset, MODEL_PRESETS)
    check_choice("config.model.param_dtype", config.model.param_dtype, PARAM_DTYPES)
    check_choice("config.model.remat", config.model.remat, REMAT_POLICIES)
    if config.model.scan_unroll < 1:
        raise ConfigError(
            f"config.model.scan_unroll={config.model.scan_unroll} must be >= 1 (1 = no unrolling)"
        )
    check_choice("config.env.backend", config.env.backend, ENV_BACKENDS)
    check_choice("config.env.camera", config.env.camera, CAMERAS)
    check_choice("config.env.layout", config.env.layout, LAYOUTS)
    check_pipeline_groups(
        config.env.get("pipeline_groups", 1), config.env.num_envs, config.env.backend, config.env.suite
    )
    _check_adapter(config)


def _check_adapter(config) -> None:
    """An adapter applies to `init_from`'s weights: without them it used to be ignored."""
    if config.get("adapter") and not config.init_from:
        raise ConfigError(
            f"config.adapter={config.adapter!r} needs config.init_from, the base model it was trained on"
        )
    if config.get("adapter") and not os.path.isfile(os.path.join(config.adapter, "adapter_config.json")):
        raise ConfigError(
            f"config.adapter={config.adapter!r} is not a PEFT adapter folder "
            "(adapter_config.json, adapter_model.safetensors)"
        )


ENV_CONDITIONS = ("image_size", "max_episode_steps", "camera", "layout")


def env_conditions(config) -> dict:
    """What a policy is trained under and evaluated under by default (stored in checkpoints)."""
    return {key: config.env[key] for key in ENV_CONDITIONS}


def env_options(conditions) -> dict:
    """The task's own keyword arguments (rl2vla_jax.envs.make_vector_env's `env_options`)."""
    return {"camera": conditions["camera"], "layout": conditions["layout"]}
