"""Config errors and the names every config choice is checked against, defined once.

Every package that validates user input imports from here (it sits below all of them), and
`rl2vla_jax.cli` turns a `ConfigError` into one `error:` line with exit code 2.
"""

from collections.abc import Iterable

ALGORITHMS = ("ppo", "grpo", "grpo_s")
CRITICS = ("value_head", "entropy_concat", "film_evi")
DESCRIPTOR_MODES = ("mean", "sum")
ENV_BACKENDS = ("cpu", "gpu")
MODEL_PRESETS = ("tiny", "openvla_7b")


class ConfigError(ValueError):
    """A value that cannot work; its message is one line naming the key and the fix."""


def check_choice(key: str, value, valid: Iterable) -> None:
    valid = tuple(valid)
    if value not in valid:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(map(str, valid))}")
