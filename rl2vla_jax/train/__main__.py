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
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Multi-host: call jax.distributed.initialize (SLURM, TPU pods, k8s auto-detected)."
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 (implies --distributed)."
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Processes in the run (with --coordinator_address)."
)
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (with --coordinator_address).")
flags.mark_flags_as_required(["config"])


def main(argv):
    del argv  # cli.run has refused positional arguments
    config = _CONFIG.value
    hparams.validate(config)
    workdir = _WORKDIR.value or f"runs/{config.name}"
    from rl2vla_jax import mesh
    from rl2vla_jax.train import loop  # heavy imports only after the config is known to be valid

    if _DISTRIBUTED.value or _COORDINATOR.value:
        mesh.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)

    loop.train(config, workdir)


if __name__ == "__main__":
    cli.run(main)
