"""Does an episode depend on what its env played before? Plays the expert on episode seed 1
three ways in one process: after seed 0 on the same env, on a freshly built env, and right after
that on the same env again; prints the first step at which the recorded actions differ and the
largest difference. Equal episodes print "first differing step []".

    ./run.sh python experiments/diagnostics/episode_history.py
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from rl2vla_jax.envs import demo_collection as collection  # noqa: E402

IMAGE_SIZE, MAX_STEPS = 32, 30


def _new_env():
    state = collection._worker_state
    if "env" in state:
        state.pop("env").close()
    collection._init_worker(
        "train", IMAGE_SIZE, MAX_STEPS, {}, collection.SUCCESS_HOLD_STEPS, 0.0, collection.MAX_TRANSLATION
    )


def main():
    _new_env()
    collection.record_episode(0)
    after_seed_0 = collection.record_episode(1)[2]
    _new_env()
    fresh = collection.record_episode(1)[2]
    repeated = collection.record_episode(1)[2]
    for name, actions in (("fresh env", fresh), ("after seed 1", repeated)):
        n = min(len(actions), len(after_seed_0))
        gap = np.abs(actions[:n] - after_seed_0[:n]).max(axis=1)
        print(
            f"seed 1 after seed 0 vs {name}: {len(after_seed_0)} / {len(actions)} steps, "
            f"first differing step {np.nonzero(gap)[0][:1].tolist()}, largest action difference {gap.max():.4f}"
        )


if __name__ == "__main__":
    main()
