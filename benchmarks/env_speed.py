"""CPU simulator throughput of the put-on-plate train split at 224x224, for 1 and 2 workers.

    ./run.sh python benchmarks/env_speed.py [--steps=40] [--workers=1,2]

Env steps/s counts every env (2 workers stepping once = 2 env steps). "outside sim" is the share
of rollout wall time not spent inside the slowest worker's `env.step` (physics + rendering):
process hand-over, image transfer and stacking, and the (random) policy.
"""

import argparse
import time

import numpy as np

from rl2vla_jax.envs import make_vector_env


def measure(num_workers: int, steps: int, image_size: int) -> dict:
    env = make_vector_env("train", num_envs=num_workers, image_size=image_size, max_episode_steps=steps)
    rng = np.random.default_rng(0)
    try:
        env.reset(seed=0)
        env.step(np.zeros((num_workers, 7), np.float32))  # warm-up
        inside = 0.0
        started = time.perf_counter()
        for _ in range(steps):
            actions = rng.uniform(-0.03, 0.03, size=(num_workers, 7)).astype(np.float32)
            env.step(actions)
            inside += env.last_sim_seconds
        wall = time.perf_counter() - started
    finally:
        env.close()
    return dict(
        workers=num_workers, env_steps_per_s=num_workers * steps / wall, outside_share=1 - inside / wall
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--image_size", type=int, default=224)
    args = parser.parse_args()
    rows = [measure(int(n), args.steps, args.image_size) for n in args.workers.split(",")]
    print("| CPU workers | image | env steps/s | share of rollout time outside the simulator |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['workers']} | {args.image_size}x{args.image_size} | {row['env_steps_per_s']:.1f} "
            f"| {100 * row['outside_share']:.1f}% |"
        )


if __name__ == "__main__":
    main()
