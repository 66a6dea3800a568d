"""exp35: would rebuilding the scene at every reset (as the RL workers do) make a demonstration
depend on its seed alone, and what would it cost? Plays the preset's expert on seed 1 after seed 0
and on a fresh env, with and without `reconfigure`, then times 16 episodes each way.

    ./run.sh python docs/results/exp35/reconfigure_probe.py
"""

import time

import numpy as np

from rl2vla_jax.envs import demo_collection as collection

PRESET = ("train", 64, 40, {"camera": "close", "layout": "narrow"}, 10, 0.0, 0.04)


def new_env(reconfigure: bool) -> None:
    state = collection._worker_state
    if "env" in state:
        state.pop("env").close()
    collection._init_worker(*PRESET)
    if reconfigure:
        env = collection._worker_state["env"]
        reset = env.reset
        env.reset = lambda seed=None, options=None: reset(seed=seed, options={"reconfigure": True})


def actions(seed: int) -> np.ndarray:
    return collection.record_episode(seed)[2]


def gap(a: np.ndarray, b: np.ndarray) -> str:
    n = min(len(a), len(b))
    step_gap = np.abs(a[:n] - b[:n]).max(axis=1)
    first = np.nonzero(step_gap)[0][:1].tolist()
    return f"{len(a)} / {len(b)} steps, first differing step {first}, largest difference {step_gap.max():.4f}"


for reconfigure in (False, True):
    new_env(reconfigure)
    actions(0)
    after_seed_0 = actions(1)
    new_env(reconfigure)
    fresh = actions(1)
    print(f"reconfigure={reconfigure}: seed 1 after seed 0 vs on a fresh env: {gap(after_seed_0, fresh)}")

for reconfigure in (False, True, False, True):
    new_env(reconfigure)
    actions(999)  # warm-up
    start, steps = time.time(), 0
    for seed in range(2000, 2016):
        steps += len(actions(seed))
    elapsed = time.time() - start
    print(
        f"reconfigure={reconfigure}: 16 episodes, {steps} steps, {elapsed:.1f} s, {elapsed / 16:.2f} s per episode"
    )
collection._worker_state.pop("env").close()
