"""Base configuration every experiment file starts from. Not run on its own.

Presets are chosen with the config argument, e.g. `--config=configs/film_evi.py:paper`:
  (none) / cpu   the embedded CPU default: tiny random OpenVLA, CPU simulator, 2 workers,
                 short horizon; a few PPO iterations in minutes on 2 cores.
  paper          OpenVLA-7B with RL4VLA's hyper-parameters (REFERENCE s.2): 64 envs x 80
                 steps, GPU simulator, LoRA r32/alpha16, value lr 3e-3, LoRA lr 1e-4.
Single values: `--config.ppo.clip_eps=0.1`. Keys are locked: a misspelt key is an error.
"""

import ml_collections

from rl2vla_jax.models.config import DEFAULT_LORA_TARGETS

PRESETS = ("cpu", "paper")
ALGORITHMS = ("ppo", "grpo", "grpo_s")
CRITICS = ("value_head", "entropy_concat", "film_evi")


def parse_presets(arg: str | None) -> tuple[str, ...]:
    """'paper' -> ('paper',); '' -> ('cpu',). Unknown names raise one line listing the valid ones."""
    names = tuple(name.strip() for name in (arg or "cpu").split(",") if name.strip()) or ("cpu",)
    for name in names:
        if name not in PRESETS:
            raise ValueError(f"unknown config preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return names


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "default"
    c.seed = 0
    c.algorithm = "ppo"  # one of ALGORITHMS
    c.grpo_group_size = 2  # envs per GRPO group; "grpo_s" also gives each group one initial state

    # Where to start: the workdir's own checkpoint wins, then `resume`, then `init_from`
    # (a converted OpenVLA or an SFT checkpoint), then a random init.
    c.resume = ""
    c.init_from = ""
    c.adapter = ""  # optional PEFT adapter dir applied on top of init_from
    c.unnorm_key = ""  # which dataset's action statistics un-normalise actions ("" = the only one)

    c.model = ml_collections.ConfigDict()
    c.model.preset = "tiny"  # "tiny" | "openvla_7b"
    c.model.param_dtype = "float32"
    c.model.remat = "none"  # "none" | "full" | "dots"
    c.model.max_prompt_tokens = 48  # prompts are padded to this: one compiled shape for all instructions

    c.lora = ml_collections.ConfigDict()
    c.lora.rank = 8
    c.lora.alpha = 16.0
    # Regexes over '/'-joined module paths: what OpenVLA's fine-tuning adapts (every Linear incl.
    # lm_head, and the patch-embedding convs; see models/config.py).
    c.lora.targets = list(DEFAULT_LORA_TARGETS)
    # Regexes over '/'-joined param paths: what the actor's optimizer updates (the LoRA factors).
    c.trainable = [r"lora_(a|b)$"]

    c.critic = ml_collections.ConfigDict()
    c.critic.name = "film_evi"  # one of CRITICS; "none" is chosen by algorithm=grpo
    c.critic.hidden_sizes = (512, 128)
    c.critic.film_hidden_size = 64
    c.critic.descriptor_mode = "mean"  # "mean" | "sum" over the 7 token entropies
    c.critic.detach_descriptor = True

    c.env = ml_collections.ConfigDict()
    c.env.suite = "ours"
    c.env.setting = "train"
    c.env.backend = "cpu"  # "cpu": worker processes; "gpu": one batched ManiSkill env
    c.env.num_envs = 2
    c.env.max_episode_steps = 20  # the expert needs ~10-16 steps to succeed; shorter cannot
    c.env.image_size = 224

    c.rollout = ml_collections.ConfigDict()
    c.rollout.temperature = 1.0
    c.rollout.eval_temperature = 0.6

    c.ppo = ml_collections.ConfigDict()
    c.ppo.gamma = 0.99
    c.ppo.gae_lambda = 0.95
    c.ppo.clip_eps = 0.2
    c.ppo.value_clip_eps = 0.2
    c.ppo.huber_delta = 10.0
    c.ppo.value_loss_coef = 1.0
    c.ppo.value_loss_entropy_coef = 0.0  # c of the entropy-weighted value loss (1 + c*H); 0 = off
    c.ppo.normalize_advantages = True
    c.ppo.epochs = 1
    c.ppo.minibatch_size = 5
    c.ppo.grad_accum_steps = 2

    c.optim = ml_collections.ConfigDict()
    c.optim.actor_lr = 1e-4
    c.optim.critic_lr = 3e-3
    c.optim.weight_decay = 0.01
    c.optim.max_grad_norm = 10.0

    c.train = ml_collections.ConfigDict()
    c.train.iterations = 3
    c.train.log_every = 1
    c.train.checkpoint_every = 1
    c.train.eval_every = 0  # 0 = never
    c.train.eval_episodes = 2
    c.train.video_every = 0
    c.train.use_wandb = False

    # Batches are split over all data x fsdp devices; params of >= fsdp_min_size elements (and
    # their optimizer moments) over fsdp, all-gathered once per iteration for acting.
    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1  # -1: all remaining devices
    c.mesh.fsdp = 1  # -1: all remaining devices
    c.mesh.fsdp_min_size = 2**18  # rl2vla_jax.mesh.FSDP_MIN_SIZE: smaller arrays stay replicated
    return c


def apply_presets(c: ml_collections.ConfigDict, presets: tuple[str, ...]) -> ml_collections.ConfigDict:
    if "paper" in presets:
        c.model.preset = "openvla_7b"
        c.model.param_dtype = "bfloat16"
        c.model.remat = "dots"
        c.lora.rank, c.lora.alpha = 32, 16.0
        c.critic.hidden_sizes = (512, 128)
        c.env.backend = "gpu"
        c.env.num_envs = 64
        c.env.max_episode_steps = 80
        c.ppo.minibatch_size = 8
        c.ppo.grad_accum_steps = 20
        c.train.iterations = 300
        c.train.checkpoint_every = 10
        c.train.eval_every = 10
        c.train.eval_episodes = 64
        c.train.video_every = 20
        c.mesh.fsdp = -1
        c.mesh.data = 1
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = apply_presets(base_config(), parse_presets(arg))
    c.lock()
    return c
