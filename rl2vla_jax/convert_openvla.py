"""Convert an HF OpenVLA checkpoint (+ optional PEFT adapter) to an rl2vla_jax checkpoint:
step 0 of `rl2vla_jax.checkpoints`' layout at --out (params, assets with the tokenizer inside).

  python -m rl2vla_jax.convert_openvla --hf_dir=DIR --out=DIR [--adapter=DIR]
      [--dtype=bfloat16|float32] [--inspect_only]

Errors (missing / unexpected / mis-shaped key, truncated shard) print one line, exit 1 and
leave nothing at --out.
"""

import json
import os
import sys

from absl import app, flags

flags.DEFINE_string(
    "hf_dir", None, "HF OpenVLA folder: config.json, safetensors shards + index.", required=True
)
flags.DEFINE_string("out", None, "Output checkpoint folder (must not exist).")
flags.DEFINE_string("adapter", None, "Optional PEFT LoRA adapter folder to import.")
flags.DEFINE_enum("dtype", "bfloat16", ["bfloat16", "float32"], "Parameter dtype of the output.")
flags.DEFINE_bool("inspect_only", False, "Print the key mapping and the model config; write nothing.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from rl2vla_jax import checkpoints
    from rl2vla_jax.convert import openvla_hf, peft_adapter
    from rl2vla_jax.convert.safetensors_io import SafetensorsError

    try:
        hf_config = openvla_hf.read_hf_config(FLAGS.hf_dir)
        cfg = openvla_hf.model_config_from_hf(hf_config, FLAGS.dtype)
        if FLAGS.inspect_only:
            plan, _ = openvla_hf.plan_conversion(FLAGS.hf_dir, cfg)
            print(openvla_hf.describe(plan))
            print(cfg.to_json())
            return 0
        if not FLAGS.out:
            raise openvla_hf.ConversionError("--out is required")
        if os.path.exists(FLAGS.out):
            raise openvla_hf.ConversionError(f"--out {FLAGS.out} already exists")
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
    except (openvla_hf.ConversionError, SafetensorsError, OSError, KeyError, json.JSONDecodeError) as e:
        print(f"convert_openvla: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"wrote {FLAGS.out}")
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
