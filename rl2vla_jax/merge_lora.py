"""Fold a checkpoint's LoRA factors into its base weights: W' = W + (alpha / r) A B.

  python -m rl2vla_jax.merge_lora --checkpoint=DIR --out=DIR

RL4VLA merges the warm-up LoRA into OpenVLA before SFT (openvla/vla-scripts/merge_lora.py:
PeftModel.merge_and_unload); the merged checkpoint's model config has no LoRA, so a run that
starts from it (`--config.init_from=OUT`) adds a fresh adapter. --checkpoint is anything
`checkpoints.resolve` accepts (a run directory, its checkpoints/ or one step); --out is step 0
of a new checkpoint with the same norm stats, tokenizer and env conditions. The sum is taken in
float32 and rounded once to the parameter dtype. Bad input: one `error:` line, exit 2, nothing
written at --out.
"""

import os

from absl import flags

from rl2vla_jax import cli
from rl2vla_jax.validation import ConfigError

flags.DEFINE_string(
    "checkpoint", None, "Checkpoint with LoRA factors (run dir, checkpoints/ or a step).", required=True
)
flags.DEFINE_string("out", None, "Output checkpoint folder (must not exist).", required=True)
FLAGS = flags.FLAGS

_STANDARD_ASSETS = ("model_config", "norm_stats", "tokenizer", "config", "env")


def main(argv):
    del argv  # cli.run has refused positional arguments
    if os.path.exists(FLAGS.out):
        raise ConfigError(f"--out {FLAGS.out} already exists; choose a new folder")
    from rl2vla_jax import checkpoints
    from rl2vla_jax.models import lora as lora_lib

    with cli.reading(f"--checkpoint={FLAGS.checkpoint} cannot be read"):
        params, cfg, assets = checkpoints.load_policy(FLAGS.checkpoint)
    if cfg.lora is None:
        raise ConfigError(f"--checkpoint={FLAGS.checkpoint} has no LoRA factors to merge")
    merged_cfg = cfg.replace(lora=None)
    extra = {k: v for k, v in assets.items() if k not in _STANDARD_ASSETS}
    new_assets = checkpoints.make_assets(
        merged_cfg,
        assets["norm_stats"],
        assets["tokenizer"],  # a file path after load_policy
        assets.get("config"),
        assets.get("env"),
        **{**extra, "merged_from": os.path.abspath(FLAGS.checkpoint)},
    )
    checkpoints.write_converted(FLAGS.out, lora_lib.merge_lora(params, cfg.lora), new_assets)
    print(f"wrote {FLAGS.out} (LoRA r{cfg.lora.rank}/alpha{cfg.lora.alpha:g} merged)")


if __name__ == "__main__":
    cli.run(main)
