"""Runs of one seed play the same initial states in the same order (the episode seeds follow the
iteration), so their rollout success is best compared episode by episode. For the episode seeds
that every named run played, each run's success rate and its difference from the first run's
(the reference, e.g. an actor-lr-0 run of the SFT policy), with the paired standard error; then
the same per block of `BLOCK` consecutive reference episodes.

    ./run.sh python experiments/diagnostics/paired_success.py BLOCK REFERENCE_RUN RUN [RUN ...]

(RUN: an RL workdir with per-sample records, `train.diagnostics_every` = 1.)
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from rl2vla_jax.policy import records  # noqa: E402


def episode_success(run_dir: str) -> dict[int, bool]:
    """Episode seed -> success (the first time the run played that seed), in play order."""
    c = records.read_records(os.path.join(run_dir, records.RECORDS_FOLDER))
    first = c["step"] == 0
    order = np.lexsort((c["env"][first], c["iteration"][first]))
    out: dict[int, bool] = {}
    for seed, success in zip(c["seed"][first][order], c["success"][first][order]):
        out.setdefault(int(seed), bool(success))
    return out


def main(block: str, reference: str, *runs: str) -> None:
    block = int(block)
    played = [episode_success(r) for r in (reference, *runs)]
    shared = [s for s in played[0] if all(s in p for p in played[1:])]
    ref = np.array([played[0][s] for s in shared], float)
    print(f"{len(shared)} episode seeds shared by all runs; reference {reference}: {ref.mean():.1%}")
    for run, p in zip(runs, played[1:]):
        x = np.array([p[s] for s in shared], float)
        d = x - ref
        print(
            f"{run}: {x.mean():.1%}; minus reference {d.mean():+.1%} (paired SE {d.std(ddof=1) / np.sqrt(len(d)):.1%}); "
            f"agreement {np.mean(x == ref):.0%}"
        )
    print(
        "| reference episodes | reference | "
        + " | ".join(f"run {i + 1} (minus reference)" for i in range(len(runs)))
        + " |"
    )
    print("|---|---|" + "---|" * len(runs))
    for start in range(0, len(shared), block):
        seeds = shared[start : start + block]
        r = np.mean([played[0][s] for s in seeds])
        cells = [
            f"{np.mean([p[s] for s in seeds]):.1%} ({np.mean([p[s] for s in seeds]) - r:+.1%})"
            for p in played[1:]
        ]
        print(f"| {start}-{start + len(seeds) - 1} | {r:.1%} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
