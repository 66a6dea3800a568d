"""exp35: where a demonstration step's time goes (one simulator process, the preset's conditions)."""

import cProfile
import pstats
import time

from rl2vla_jax.envs import demo_collection

# The `experiment` preset's collection: 64 px, 40-step horizon, close camera, narrow layout,
# 10 hold steps, no action noise, 4 cm expert steps.
demo_collection._init_worker("train", 64, 40, {"camera": "close", "layout": "narrow"}, 10, 0.0, 0.04)
demo_collection.record_episode(1000)  # warm-up
start = time.time()
profile = cProfile.Profile()
profile.enable()
steps = 0
for seed in range(2000, 2012):
    _, records, *_ = demo_collection.record_episode(seed)
    steps += len(records)
profile.disable()
elapsed = time.time() - start
print(f"12 episodes, {steps} steps, {elapsed:.1f}s, {elapsed / steps * 1000:.1f} ms/step")
pstats.Stats(profile).sort_stats("cumulative").print_stats(35)
