"""Compare methods over seeds: python -m rl2vla_jax.results --out=OUT
  [--evals=LABEL=EVAL_DIR,EVAL_DIR ...]   the evaluation folders (eval --out) of a method's seeds
  [--runs=LABEL=RUN_DIR,RUN_DIR ...]      the RL run directories (train --workdir) of its seeds

Repeat --evals / --runs once per method (or separate methods with ';'); the order is the table's.
--evals writes OUT/table.md, table.csv, settings.csv, table.png (evaluation/tables.py);
--runs writes OUT/curves.csv, curves.png (evaluation/curves.py), each seed smoothed by a trailing
mean over --curve_window iterations. Every input is read and checked
before OUT is written.
"""

import os

from absl import flags

from rl2vla_jax import cli
from rl2vla_jax.validation import ConfigError

_EVALS = flags.DEFINE_multi_string(
    "evals", [], "LABEL=DIR[,DIR...]: evaluation folders of one method's seeds."
)
_RUNS = flags.DEFINE_multi_string("runs", [], "LABEL=DIR[,DIR...]: RL run directories of one method's seeds.")
_CURVE_WINDOW = flags.DEFINE_integer(
    "curve_window",
    5,
    "Learning curves: each seed's point is the mean of its last N iterations (1 = raw). A CPU "
    "iteration holds a few episodes, too few for a readable success rate.",
)
_OUT = flags.DEFINE_string("out", None, "Folder for the tables, curves and plots.")
flags.mark_flags_as_required(["out"])


def parse_methods(flag: str, values: list[str]) -> list[tuple[str, list[str]]]:
    """['A=d1,d2;B=d3'] -> [('A', ['d1', 'd2']), ('B', ['d3'])]."""
    methods = []
    for value in values:
        for spec in filter(None, (s.strip() for s in value.split(";"))):
            label, _, folders = spec.partition("=")
            folders = [f.strip() for f in folders.split(",") if f.strip()]
            if not label.strip() or not folders:
                raise ConfigError(f"--{flag}={spec!r} must be LABEL=DIR[,DIR...], e.g. --{flag}=ppo=a,b")
            methods.append((label.strip(), folders))
    return methods


def main(argv):
    cli.no_positional_arguments(argv)
    evals, runs = parse_methods("evals", _EVALS.value), parse_methods("runs", _RUNS.value)
    if not evals and not runs:
        raise ConfigError("nothing to do: pass --evals=LABEL=DIR,... and/or --runs=LABEL=DIR,...")
    from rl2vla_jax.evaluation import curves, tables

    methods = tables.load_methods(evals) if evals else None
    learning = curves.load_curves(runs, _CURVE_WINDOW.value) if runs else None
    os.makedirs(_OUT.value, exist_ok=True)
    if methods:
        print(tables.write_tables(_OUT.value, methods))
    if learning:
        curves.write_curves(_OUT.value, learning)
    written = (["table.md", "table.csv", "settings.csv", "table.png"] if methods else []) + (
        ["curves.csv", "curves.png"] if learning else []
    )
    print(f"[results] {_OUT.value}: {', '.join(written)}")


if __name__ == "__main__":
    cli.run(main)
