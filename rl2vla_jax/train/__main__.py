"""RL post-training of a VLA: python -m rl2vla_jax.train --config=configs/film_evi.py [--workdir=DIR]."""

from absl import flags
from ml_collections import config_flags

from rl2vla_jax import cli
from rl2vla_jax.train import hparams

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file[:presets].", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory (checkpoints, events); default runs/<config name>."
)
flags.mark_flags_as_required(["config"])


def main(argv):
    if len(argv) > 1:
        raise hparams.ConfigError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    config = _CONFIG.value
    hparams.validate(config)
    workdir = _WORKDIR.value or f"runs/{config.name}"
    from rl2vla_jax.train import loop  # heavy imports only after the config is known to be valid

    loop.train(config, workdir)


if __name__ == "__main__":
    cli.run(main)
