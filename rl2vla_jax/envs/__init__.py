"""Simulator adapters and the project's ManiSkill task family (the only package importing sapien).

Importing this package registers the put-on-plate ids with ManiSkill, in whichever process
imports it (CPU vector-env workers import it too).
"""

from rl2vla_jax.envs.put_on_plate import PutOnPlateEnv, register_all
from rl2vla_jax.envs.settings import SETTINGS, SettingSpec

register_all()

__all__ = ["PutOnPlateEnv", "SETTINGS", "SettingSpec", "make_vector_env"]


def make_vector_env(*args, **kwargs):
    """See `rl2vla_jax.envs.vector_env.make_vector_env` (imported lazily: it pulls in JAX)."""
    from rl2vla_jax.envs.vector_env import make_vector_env as _make

    return _make(*args, **kwargs)
