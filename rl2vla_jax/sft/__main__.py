"""Supervised warm-up of a VLA on demonstrations: python -m rl2vla_jax.sft --config=configs/sft.py [--workdir=DIR].

Writes <workdir>/checkpoints/<step> (model checkpoints: `train --config.init_from=` and
`eval --checkpoint=` read them) and <workdir>/metrics.jsonl (train and validation metrics).
"""

from absl import flags
from ml_collections import config_flags

from rl2vla_jax import cli, config_base
from rl2vla_jax.validation import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", None, "SFT config file[:presets].", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory (checkpoints, metrics); default runs/<config name>."
)
flags.mark_flags_as_required(["config"])


def main(argv):
    del argv  # cli.run has refused positional arguments
    config = _CONFIG.value
    if "sft" not in config:
        raise ConfigError("the config has no `sft` section; use configs/sft.py")
    config_base.validate_common(config)
    from rl2vla_jax.sft import loop  # heavy imports only after the config is known to be valid

    loop.train(config, _WORKDIR.value or f"runs/{config.name}")


if __name__ == "__main__":
    cli.run(main)
