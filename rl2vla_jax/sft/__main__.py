"""Supervised warm-up of a VLA on demonstrations: python -m rl2vla_jax.sft --config=configs/sft.py [--workdir=DIR].

Writes <workdir>/checkpoints/<step> (model checkpoints: `train --config.init_from=` and
`eval --checkpoint=` read them) and <workdir>/metrics.jsonl (train and validation metrics).
"""

from absl import flags
from ml_collections import config_flags

from rl2vla_jax import cli
from rl2vla_jax.validation import MODEL_PRESETS, ConfigError, check_choice

_CONFIG = config_flags.DEFINE_config_file("config", None, "SFT config file[:presets].", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory (checkpoints, metrics); default runs/<config name>."
)
flags.mark_flags_as_required(["config"])


def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    config = _CONFIG.value
    if "sft" not in config:
        raise ConfigError("the config has no `sft` section; use configs/sft.py")
    check_choice("config.model.preset", config.model.preset, MODEL_PRESETS)
    from rl2vla_jax.sft import loop  # heavy imports only after the config is known to be valid

    loop.train(config, _WORKDIR.value or f"runs/{config.name}")


if __name__ == "__main__":
    cli.run(main)
