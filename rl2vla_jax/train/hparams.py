"""The config, checked once at the edge and turned into frozen hyper-parameters.

The RL maths and jitted steps take `RLHparams` (plain numbers, hashable, so it can be bound
with functools.partial and used as a static argument), never a ConfigDict.
"""

import dataclasses

import ml_collections

from rl2vla_jax.config_base import validate_common
from rl2vla_jax.train.episode_plan import samples_per_iteration
from rl2vla_jax.validation import (
    ALGORITHMS,
    CRITICS,
    DESCRIPTOR_MODES,
    DESCRIPTOR_TOKENS,
    GRPO_ADVANTAGES,
    PPO_RATIOS,
    SAME_INIT,
    TOKEN_REDUCTIONS,
    ConfigError,
    check_choice,
)

_NON_NEGATIVE = (
    "ppo.clip_eps",
    "optim.actor_lr",
    "optim.critic_lr",
    "optim.actor_frozen_iterations",
    "rollout.temperature",
    "eval.temperature",
    "env.reach_shaping",
)


def _check_choice(key: str, value, valid) -> None:
    check_choice(f"config.{key}", value, valid)


def validate(config: ml_collections.ConfigDict) -> None:
    """Raise ConfigError (one line) for the first invalid value in an RL `config`."""
    for section in ("ppo", "critic", "rollout", "train"):
        if section not in config:
            raise ConfigError(
                f"the config has no `{section}` section; use an RL config (configs/film_evi.py)"
            )
    validate_common(config)
    _check_choice("algorithm", config.algorithm, ALGORITHMS)
    _check_choice("critic.name", config.critic.name, CRITICS)
    _check_choice("critic.descriptor_mode", config.critic.descriptor_mode, DESCRIPTOR_MODES)
    _check_choice("critic.descriptor_tokens", config.critic.descriptor_tokens, DESCRIPTOR_TOKENS)
    _check_choice("grpo.advantage", config.grpo.advantage, GRPO_ADVANTAGES)
    _check_choice("grpo.same_init", config.grpo.same_init, SAME_INIT)
    _check_choice("ppo.ratio", config.ppo.ratio, PPO_RATIOS)
    _check_choice("ppo.token_reduction", config.ppo.token_reduction, TOKEN_REDUCTIONS)
    if config.rollout.episodes_per_env < 1:
        raise ConfigError(f"config.rollout.episodes_per_env={config.rollout.episodes_per_env} must be >= 1")
    samples = samples_per_iteration(config)
    per_update = config.ppo.minibatch_size * config.ppo.grad_accum_steps
    if per_update <= 0 or samples % per_update:
        raise ConfigError(
            f"a rollout of env.num_envs*rollout.episodes_per_env*env.max_episode_steps={samples} samples does not split into "
            f"updates of ppo.minibatch_size*ppo.grad_accum_steps={per_update}; make the second divide the first"
        )
    if config.algorithm.startswith("grpo") and config.optim.actor_frozen_iterations > 0:
        raise ConfigError(
            f"config.optim.actor_frozen_iterations={config.optim.actor_frozen_iterations} waits for a critic "
            f"to learn, and algorithm={config.algorithm} has none; set it to 0"
        )
    if config.algorithm.startswith("grpo") and config.env.num_envs % config.grpo_group_size:
        raise ConfigError(
            f"env.num_envs={config.env.num_envs} is not a multiple of grpo_group_size={config.grpo_group_size}"
        )
    if config.env.reach_shaping and config.env.suite != "ours":
        raise ConfigError(
            f"config.env.reach_shaping={config.env.reach_shaping} is a reward of the suite 'ours', "
            f"not of env.suite={config.env.suite!r}; set it to 0"
        )
    for key in _NON_NEGATIVE:
        section, name = key.split(".")
        if config[section][name] < 0:
            raise ConfigError(f"config.{key}={config[section][name]} must be >= 0")


@dataclasses.dataclass(frozen=True)
class RLHparams:
    algorithm: str
    critic: str
    gamma: float
    gae_lambda: float
    clip_eps: float
    value_clip_eps: float | None
    huber_delta: float | None
    value_loss_coef: float
    value_loss_entropy_coef: float
    normalize_advantages: bool
    bootstrap_truncation: bool
    ratio: str
    token_reduction: str
    epochs: int
    minibatch_size: int
    grad_accum_steps: int
    temperature: float
    descriptor_mode: str
    descriptor_tokens: str
    detach_descriptor: bool
    detach_hidden: bool
    group_size: int
    grpo_advantage: str
    grpo_nonzero_rewards_only: bool
    actor_frozen_iterations: int = 0

    @property
    def uses_critic(self) -> bool:
        return self.algorithm == "ppo"


def rl_hparams(config: ml_collections.ConfigDict) -> RLHparams:
    validate(config)
    return RLHparams(
        algorithm=config.algorithm,
        critic=config.critic.name,
        gamma=float(config.ppo.gamma),
        gae_lambda=float(config.ppo.gae_lambda),
        clip_eps=float(config.ppo.clip_eps),
        value_clip_eps=None if config.ppo.value_clip_eps is None else float(config.ppo.value_clip_eps),
        huber_delta=None if config.ppo.huber_delta is None else float(config.ppo.huber_delta),
        value_loss_coef=float(config.ppo.value_loss_coef),
        value_loss_entropy_coef=float(config.ppo.value_loss_entropy_coef),
        normalize_advantages=bool(config.ppo.normalize_advantages),
        bootstrap_truncation=bool(config.ppo.bootstrap_truncation),
        ratio=config.ppo.ratio,
        token_reduction=config.ppo.token_reduction,
        epochs=int(config.ppo.epochs),
        minibatch_size=int(config.ppo.minibatch_size),
        grad_accum_steps=int(config.ppo.grad_accum_steps),
        temperature=float(config.rollout.temperature),
        descriptor_mode=config.critic.descriptor_mode,
        descriptor_tokens=config.critic.descriptor_tokens,
        detach_descriptor=bool(config.critic.detach_descriptor),
        detach_hidden=bool(config.critic.detach_hidden),
        group_size=int(config.grpo_group_size),
        grpo_advantage=config.grpo.advantage,
        grpo_nonzero_rewards_only=bool(config.grpo.nonzero_rewards_only),
        actor_frozen_iterations=int(config.optim.actor_frozen_iterations),
    )
