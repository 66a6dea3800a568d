"""Convert an HF OpenVLA checkpoint (+ optional PEFT adapter) to an rl2vla_jax checkpoint:
step 0 of `rl2vla_jax.checkpoints`' layout at --out (params, assets with the tokenizer inside).

  python -m rl2vla_jax.convert_openvla --hf_dir=DIR --out=DIR [--adapter=DIR]
      [--dtype=bfloat16|float32] [--inspect_only]

Errors (missing / unexpected / mis-shaped key, truncated shard, an existing --out) print one
`error:` line, exit 2 and leave nothing at --out.
"""

import json
import os

from absl import flags

from rl2vla_jax import cli
from rl2vla_jax.validation import PARAM_DTYPES, ConfigError

flags.DEFINE_string(
    "hf_dir", None, "HF OpenVLA folder: config.json, safetensors shards + index.", required=True
)
flags.DEFINE_string("out", None, "Output checkpoint folder (must not exist).")
flags.DEFINE_string("adapter", None, "Optional PEFT LoRA adapter folder to import.")
flags.DEFINE_enum("dtype", "bfloat16", PARAM_DTYPES, "Parameter dtype of the output.")
flags.DEFINE_bool("inspect_only", False, "Print the key mapping and the model config; write nothing.")
FLAGS = flags.FLAGS


def main(argv):
    del argv  # cli.run has refused positional arguments
    if not os.path.isdir(FLAGS.hf_dir):
        raise ConfigError(f"--hf_dir {FLAGS.hf_dir} is not a folder; pass an HF OpenVLA checkpoint folder")
    if not FLAGS.inspect_only and not FLAGS.out:
        raise ConfigError("--out is required (or pass --inspect_only)")
    if not FLAGS.inspect_only and os.path.exists(FLAGS.out):
        raise ConfigError(f"--out {FLAGS.out} already exists; choose a new folder")
    from rl2vla_jax import checkpoints
    from rl2vla_jax.convert import openvla_hf, peft_adapter

    # A broken download is the user's input: one line naming the key or shard, exit 2.
    with cli.reading("conversion failed"):
        hf_config = openvla_hf.read_hf_config(FLAGS.hf_dir)
        cfg = openvla_hf.model_config_from_hf(hf_config, FLAGS.dtype)
        if FLAGS.inspect_only:
            plan, _ = openvla_hf.plan_conversion(FLAGS.hf_dir, cfg)
            print(openvla_hf.describe(plan))
            print(cfg.to_json())
            return
        params = openvla_hf.load_params(FLAGS.hf_dir, cfg)
        if FLAGS.adapter:
            params, cfg = peft_adapter.import_adapter(FLAGS.adapter, params, cfg)
        norm_stats = hf_config.get("norm_stats") or {}
        stats_file = os.path.join(FLAGS.adapter or FLAGS.hf_dir, "dataset_statistics.json")
        if os.path.exists(stats_file):
            with open(stats_file) as f:
                norm_stats = {**norm_stats, **json.load(f)}
        tokenizer = os.path.join(FLAGS.hf_dir, "tokenizer.model")
        tokenizer = tokenizer if os.path.isfile(tokenizer) else None
        assets = checkpoints.make_assets(cfg, norm_stats, tokenizer, hf_config=hf_config)
        checkpoints.write_converted(FLAGS.out, params, assets)
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main)
