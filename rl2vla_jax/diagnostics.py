"""The critic's diagnostics: python -m rl2vla_jax.diagnostics --run=DIR --out=OUT.

DIR is a training run (train --workdir, with records from train.diagnostics_every) or an
evaluation folder (eval --out). Writes OUT/diagnostics.md, OUT/diagnostics.json and PNGs:
value error and |TD error| by entropy decile, Spearman correlation of the descriptor with the
return and with |value error| (bootstrap intervals), explained and advantage variance over
training, entropy per OOD category, and for evaluation folders value calibration per setting
and per category (rl2vla_jax/evaluation/diagnostics.py).
"""

import os

from absl import flags

from rl2vla_jax import cli, files

_RUN = flags.DEFINE_string("run", None, "A training run directory or an evaluation folder.")
_OUT = flags.DEFINE_string("out", None, "Folder for diagnostics.md, diagnostics.json and the plots.")
flags.mark_flags_as_required(["run", "out"])


def main(argv):
    del argv  # cli.run has refused positional arguments
    if not os.path.isdir(_RUN.value):
        raise FileNotFoundError(f"--run={_RUN.value} is not a directory")
    from rl2vla_jax.evaluation import diagnostic_plots, diagnostics

    with cli.reading(f"the records of {_RUN.value}"):
        columns, kind = diagnostics.load(_RUN.value)
    result = diagnostics.analyse(columns, kind)
    os.makedirs(_OUT.value, exist_ok=True)
    plots = diagnostic_plots.write_plots(_OUT.value, result, columns)
    text = diagnostics.markdown(result, _RUN.value, plots)
    for name, content in (("diagnostics.json", diagnostics.to_json(result)), ("diagnostics.md", text)):
        files.write_text(os.path.join(_OUT.value, name), content)
    print(text)
    print(f"[diagnostics] {_OUT.value}: diagnostics.md, diagnostics.json, {', '.join(plots)}")


if __name__ == "__main__":
    cli.run(main)
