"""Config errors and the names every config choice is checked against, defined once.

Every package that validates user input imports from here (it sits below all of them), and
`rl2vla_jax.cli` turns a `ConfigError` into one `error:` line with exit code 2. The configs,
the hyper-parameter check and the entry points' flags all take their choice lists from here;
models/critics.py and models/config.py hold the constructors of the same names (a test keeps
the two in step).
"""

from collections.abc import Iterable

ALGORITHMS = ("ppo", "grpo", "grpo_s")
CRITICS = ("value_head", "entropy_concat", "film_evi")
# GRPO's advantage: "group" standardises reward-to-go within each group of envs (ours);
# "buffer_rewards" standardises the per-step rewards over the whole buffer, then sums them into
# undiscounted reward-to-go (RL4VLA's compute_returns_grpo).
GRPO_ADVANTAGES = ("group", "buffer_rewards")
# grpo_s: which envs share one initial state, each "group" (ours) or the whole "batch" (RL4VLA).
SAME_INIT = ("group", "batch")
# PPO's ratio: one of the whole action (ours) or one per token; the surrogate's token columns
# averaged (ours) or summed (RL4VLA, whose 7 columns all hold the action's ratio).
PPO_RATIOS = ("action", "token")
TOKEN_REDUCTIONS = ("mean", "sum")
DESCRIPTOR_MODES = ("mean", "sum")
DESCRIPTOR_TOKENS = ("all", "first")  # which token entropies feed the EVI descriptor
ENV_BACKENDS = ("cpu", "gpu")
CAMERAS = ("wide", "close")  # rl2vla_jax/envs/put_on_plate.py: CAMERAS
# rl2vla_jax/envs/put_on_plate.py: LAYOUTS, plus "narrow_all" (that file: PutOnPlateEnv.__init__)
LAYOUTS = ("full", "narrow", "narrow_all")
MODEL_PRESETS = ("tiny", "small", "small_2layer", "openvla_7b")
PARAM_DTYPES = ("float32", "bfloat16")
REMAT_POLICIES = ("none", "full", "dots")
# Presets of the config argument (`--config=configs/film_evi.py:paper`); "cpu" is the default.
CONFIG_PRESETS = ("cpu", "paper", "experiment")


class ConfigError(ValueError):
    """A value that cannot work; its message is one line naming the key and the fix."""


class RunStopped(RuntimeError):
    """A run that cannot go on for a reason outside the code (non-finite values, a save that
    failed): one line naming what happened and the last good checkpoint; exit code 1."""


def check_choice(key: str, value, valid: Iterable) -> None:
    valid = tuple(valid)
    if value not in valid:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(map(str, valid))}")


def check_pipeline_groups(groups: int, num_envs: int, backend: str, suite: str) -> None:
    """Pipelined rollouts (`config.env.pipeline_groups`) need equal groups of envs, each stepped
    by its own simulator worker processes (the cpu backend)."""
    if groups < 1 or num_envs % groups:
        raise ConfigError(
            f"config.env.pipeline_groups={groups} must be >= 1 and divide config.env.num_envs={num_envs}"
        )
    if groups > 1 and (backend != "cpu" or suite == "rl4vla"):
        raise ConfigError(
            f"config.env.pipeline_groups={groups} needs env.backend='cpu' and a suite other than rl4vla "
            "(the gpu backend and the rl4vla suite step all envs in one batched simulator); set it to 1"
        )
