"""What EVI costs: python -m rl2vla_jax.measure_overhead --config=configs/film_evi.py [--out=FILE.json].

For the config's CPU scale and for OpenVLA-7B shapes (its `paper` preset, abstract bf16
shapes, nothing allocated), FiLM-EVI vs the plain value head with everything else equal:
parameters, XLA's compiled memory of the update step, and (CPU only) the median policy-step
and update latency. Prints a Markdown table; --out writes the JSON
{"cpu": {...}, "openvla_7b": {...}} (see rl2vla_jax/train/overhead.py).
"""

import os

from absl import flags
from ml_collections import config_flags

from rl2vla_jax import cli, files

_CONFIG = config_flags.DEFINE_config_file("config", None, "RL config file (its CPU scale is measured).")
_OUT = flags.DEFINE_string("out", None, "JSON file to write.")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed rounds per arm at CPU scale (median).", lower_bound=1)
_SKIP_7B = flags.DEFINE_bool("skip_7b", False, "Measure the CPU scale only (7B compiles for minutes).")
flags.mark_flags_as_required(["config"])


def main(argv):
    del argv  # cli.run has refused positional arguments
    config = _CONFIG.value
    from rl2vla_jax.train import hparams

    hparams.validate(config)
    if _OUT.value and not os.path.isdir(os.path.dirname(os.path.abspath(_OUT.value))):
        raise FileNotFoundError(f"--out={_OUT.value}: its folder does not exist")
    from rl2vla_jax import config_base
    from rl2vla_jax.train import overhead

    report = {"cpu": overhead.measure_cpu(config, _REPEATS.value)}
    if not _SKIP_7B.value:
        paper = config_base.rl(config_base.parse_arg("paper", **config_base.PRESET_ARGS))
        paper.critic.hidden_sizes = tuple(config.critic.hidden_sizes)  # the measured critic, at 7B width
        paper.critic.film_hidden_size = config.critic.film_hidden_size
        report["openvla_7b"] = overhead.measure_openvla_7b(paper)
    print(overhead.markdown_table(report), flush=True)
    if _OUT.value:
        files.write_json(_OUT.value, report)
        print(f"[measure_overhead] wrote {_OUT.value}")


if __name__ == "__main__":
    cli.run(main)
