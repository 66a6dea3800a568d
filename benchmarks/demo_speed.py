"""What one demonstration step costs, with and without skipping out-of-view robot links.

    ./run.sh python benchmarks/demo_speed.py [--config_arg=experiment] [--episodes=8] [--rounds=4]

One simulator process plays the scripted expert on the collection settings of
configs/sft.py:<config_arg> (image size, camera, layout, hold steps, action noise, expert step),
`episodes` episodes per round, alternating rounds with `cull_out_of_view` on and off (the same
seeds each round). Prints ms per recorded step (physics, rendering, expert and record encoding)
per round, and the medians. The images are the same either way (tests/envs/test_view_culling.py);
this measures only the time.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root
from configs import sft  # noqa: E402
from rl2vla_jax.envs import demo_collection  # noqa: E402

MAX_STEPS = 40  # collect_demos' default step limit, as the `sft` stage uses it


def _ms_per_step(episodes: list[int]) -> float:
    started, steps = time.perf_counter(), 0
    for seed in episodes:
        _, records, *_ = demo_collection.record_episode(seed)
        steps += len(records)
    return 1000 * (time.perf_counter() - started) / steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config_arg", default="experiment")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    config = sft.get_config(args.config_arg)
    c = config.collect
    demo_collection._init_worker(
        config.env.setting,
        config.env.image_size,
        MAX_STEPS,
        {"camera": config.env.camera, "layout": config.env.layout},
        c.hold_steps,
        c.action_noise,
        c.expert_step,
    )
    env = demo_collection._worker_state["env"].unwrapped
    demo_collection.record_episode(10_000)  # warm-up
    print(
        f"config {args.config_arg}: {config.env.image_size} px, camera {config.env.camera}, "
        f"{args.episodes} episodes per round"
    )
    results = {True: [], False: []}
    for r in range(args.rounds):
        seeds = list(range(20_000 + args.episodes * r, 20_000 + args.episodes * (r + 1)))
        for cull in (False, True):
            env.cull_out_of_view = cull
            results[cull].append(_ms_per_step(seeds))
            print(f"round {r} culling {'on ' if cull else 'off'}: {results[cull][-1]:.1f} ms/step", flush=True)
    off, on = statistics.median(results[False]), statistics.median(results[True])
    print(f"median ms/step: off {off:.1f}, on {on:.1f} ({(off - on) / off:.0%} of the step saved)")


if __name__ == "__main__":
    main()
