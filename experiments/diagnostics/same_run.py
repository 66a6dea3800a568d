"""Did two runs of one stage produce the same thing? Compares two run folders of
`experiments/cpu.sh` (or a run folder and a fingerprint of another, for runs on other machines):
the demonstrations file by file, then the SFT policy of each (the latest checkpoint in DIR/sft)
parameter by parameter. Prints one line per part, exits 1 when anything differs.

    ./run.sh python experiments/diagnostics/same_run.py RUN_A RUN_B|FINGERPRINT.json
    ./run.sh python experiments/diagnostics/same_run.py --fingerprint RUN > FINGERPRINT.json

A fingerprint is the SHA-256 of every demonstration file and of every parameter array's bytes:
small enough to commit with a run's results. Which demonstration files differ says what differs:
`.npz` shards hold the expert's actions and proprio (the physics), `.array_record` shards also
the rendered images. Two run folders also get the largest parameter difference.
"""

import hashlib
import json
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from rl2vla_jax import checkpoints  # noqa: E402


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _param_leaves(run: str) -> dict[str, np.ndarray]:
    params, _, _ = checkpoints.load_params(os.path.join(run, "sft"))
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(params)}


def _sha256_array(array: np.ndarray) -> str:
    return hashlib.sha256(f"{array.dtype}{array.shape}".encode() + np.ascontiguousarray(array).tobytes()).hexdigest()


def fingerprint(run: str) -> dict:
    demos = os.path.join(run, "demos")
    return {
        "demos": {name: _sha256_file(os.path.join(demos, name)) for name in sorted(os.listdir(demos))},
        "sft": {name: _sha256_array(leaf) for name, leaf in _param_leaves(run).items()},
    }


def _differing(a: dict, b: dict) -> list[str]:
    return [name for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]


def compare(a: str, b: str) -> bool:
    """True when runs/fingerprints `a` and `b` have the same demonstrations and SFT parameters."""
    fp_a, fp_b = (_load_fingerprint(x) if x.endswith(".json") else fingerprint(x) for x in (a, b))
    demos = _differing(fp_a["demos"], fp_b["demos"])
    kinds = sorted({os.path.splitext(name)[1] or name for name in demos})
    print(f"demos: {len(set(fp_a['demos']) | set(fp_b['demos']))} files, {len(demos)} differ {demos[:5]} {kinds}")
    params = _differing(fp_a["sft"], fp_b["sft"])
    line = f"sft: {len(set(fp_a['sft']) | set(fp_b['sft']))} parameter arrays, {len(params)} differ"
    if params and not (a.endswith(".json") or b.endswith(".json")):
        leaves_a, leaves_b = _param_leaves(a), _param_leaves(b)
        if set(leaves_a) == set(leaves_b):
            gap = max(float(np.max(np.abs(leaves_a[n].astype(np.float64) - leaves_b[n]))) for n in params)
            line += f", largest difference {gap:.3g}"
    print(line)
    return not demos and not params


def _load_fingerprint(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--fingerprint":
        json.dump(fingerprint(argv[1]), sys.stdout, indent=1, sort_keys=True)
        print()
        return 0
    if len(argv) != 2 or argv[0].startswith("--"):
        sys.exit(
            "usage: same_run.py RUN_A RUN_B|FINGERPRINT.json, or same_run.py --fingerprint RUN "
            "(run folders of experiments/cpu.sh, each with demos/ and sft/)"
        )
    same = compare(argv[0], argv[1])
    print("identical" if same else "different")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
