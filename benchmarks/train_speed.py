"""Time per RL iteration at the tiny CPU config, split into simulator / policy / update / host.

    ./run.sh python benchmarks/train_speed.py [--iterations=4] [--num_envs=2] [--steps=20]

Runs the real loop (CPU simulator workers, tiny OpenVLA, FiLM-EVI PPO) in a temporary workdir
and prints the median of each phase over the iterations after the first (which compiles).
"""

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root: `configs`
from configs import film_evi  # noqa: E402
from rl2vla_jax.train import loop

PHASES = ("time_simulator", "time_policy", "time_update", "time_host")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--num_envs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--image_size", type=int, default=224)
    args = parser.parse_args()
    config = film_evi.get_config()
    config.train.iterations = args.iterations
    config.env.num_envs, config.env.max_episode_steps = args.num_envs, args.steps
    config.env.image_size = args.image_size
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = args.num_envs * args.steps // 4, 2
    with tempfile.TemporaryDirectory() as workdir:
        rows = loop.train(config, workdir)["rows"]
    first, rest = rows[0], rows[1:]
    medians = {k: statistics.median(r[k] for r in rest) for k in PHASES}
    total = sum(medians.values())
    print(f"\n{args.num_envs} envs x {args.steps} steps, env images {args.image_size}px, tiny model (28 px)")
    print("| phase | first iteration (compiles) s | median later iteration s | share |")
    print("|---|---|---|---|")
    for key in PHASES:
        print(f"| {key[5:]} | {first[key]:.2f} | {medians[key]:.2f} | {medians[key] / total:.0%} |")
    print(f"| total | {sum(first[k] for k in PHASES):.2f} | {total:.2f} | 100% |")
    print(f"env steps/s over a later iteration: {args.num_envs * args.steps / total:.1f}")


if __name__ == "__main__":
    main()
