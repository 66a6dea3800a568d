"""Did two runs of one stage produce the same thing? Compares two run folders of
`experiments/cpu.sh`: the demonstrations file by file (bytes), then the SFT policy of each
(the latest checkpoint in DIR/sft) parameter by parameter. Prints one line per part and the
largest parameter difference; exits 1 when anything differs.

    ./run.sh python experiments/diagnostics/same_run.py RUN_A RUN_B
"""

import filecmp
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from rl2vla_jax import checkpoints  # noqa: E402


def _same_demos(a: str, b: str) -> bool:
    names = sorted(set(os.listdir(a)) | set(os.listdir(b)))
    differing = [
        n
        for n in names
        if not (
            os.path.isfile(os.path.join(a, n))
            and os.path.isfile(os.path.join(b, n))
            and filecmp.cmp(os.path.join(a, n), os.path.join(b, n), shallow=False)
        )
    ]
    print(f"demos: {len(names)} files, {len(differing)} differ {differing[:5]}")
    return not differing


def _same_policy(a: str, b: str) -> bool:
    params_a, _, _ = checkpoints.load_params(a)
    params_b, _, _ = checkpoints.load_params(b)
    leaves_a, tree_a = jax.tree_util.tree_flatten(params_a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(params_b)
    if tree_a != tree_b:
        print("sft: the two policies have different parameter trees")
        return False
    gaps = [
        float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
        for x, y in zip(leaves_a, leaves_b)
    ]
    differing = sum(g > 0 for g in gaps)
    print(f"sft: {len(gaps)} parameter arrays, {differing} differ, largest difference {max(gaps):.3g}")
    return differing == 0


def main(run_a: str, run_b: str) -> int:
    same = _same_demos(os.path.join(run_a, "demos"), os.path.join(run_b, "demos"))
    same = _same_policy(os.path.join(run_a, "sft"), os.path.join(run_b, "sft")) and same
    print("identical" if same else "different")
    return 0 if same else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(
            "usage: same_run.py RUN_A RUN_B (two run folders of experiments/cpu.sh, each with demos/ and sft/)"
        )
    sys.exit(main(sys.argv[1], sys.argv[2]))
