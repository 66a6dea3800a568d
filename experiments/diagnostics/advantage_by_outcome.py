"""Are a run's advantages signed the way success says? For each named iteration of an RL run's
per-sample records (`train.diagnostics_every`), the mean GAE advantage (before normalisation) of
the successful episodes' samples and of the failed ones'; for the first iteration named, also the
mean advantage and value by step.

    ./run.sh python experiments/diagnostics/advantage_by_outcome.py RUN_DIR ITERATION [ITERATION ...]
"""

import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from rl2vla_jax.policy import records  # noqa: E402


def main(run_dir: str, *iterations: str) -> None:
    for n, iteration in enumerate(iterations):
        # one file per iteration, or one per process of a multi-host run
        pattern = os.path.join(run_dir, records.RECORDS_FOLDER, f"iteration_{int(iteration):05d}*.npz")
        c = records.read_records(sorted(glob.glob(pattern)))
        success, advantage, value, step = c["success"], c["advantage"], c["value"], c["step"]
        episodes = len(set(zip(c["seed"], c["env"])))
        print(
            f"iteration {iteration}: {episodes} episodes, success {success.mean():.3f}; mean advantage of "
            f"successful episodes {advantage[success].mean():+.4f}, of failed {advantage[~success].mean():+.4f}"
        )
        if n == 0:
            for t in np.unique(step)[::5]:
                at = step == t
                print(
                    f"  step {t:2d}: advantage {advantage[at & success].mean():+.3f} (success) "
                    f"{advantage[at & ~success].mean():+.3f} (failed); value {value[at & success].mean():.3f} / "
                    f"{value[at & ~success].mean():.3f}"
                )


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
