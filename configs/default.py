"""The RL default (PPO with the FiLM-EVI critic) that the experiment files are variations of.

Run:       python -m rl2vla_jax.train --config=configs/default.py (same as configs/film_evi.py)
The sections and their `paper` values live in rl2vla_jax/config_base.py (the package cannot
import this folder). The config argument is comma-separated `key=value`, bare words are
booleans: `--config=configs/film_evi.py:paper`, `:paper,seed=3`, `:cpu` (the default).
Single values: `--config.ppo.clip_eps=0.1`. Keys are locked: a misspelt key is an error.
"""

from rl2vla_jax import config_base


def base_config(arg: str | None = None):
    """Unlocked, for code and tests that change it further."""
    return config_base.rl(config_base.parse_arg(arg, **config_base.PRESET_ARGS))


def get_config(arg: str | None = None):
    return config_base.locked(base_config(arg))
