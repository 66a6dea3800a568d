"""exp35: demonstration step time under the LP_NUM_THREADS the caller sets (lavapipe's threads)."""

import os
import time

from rl2vla_jax.envs import demo_collection

demo_collection._init_worker("train", 64, 40, {"camera": "close", "layout": "narrow"}, 10, 0.0, 0.04)
demo_collection.record_episode(1000)  # warm-up
start, steps = time.time(), 0
for seed in range(2000, 2016):
    _, records, *_ = demo_collection.record_episode(seed)
    steps += len(records)
elapsed = time.time() - start
print(
    f"LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS')}: 16 episodes, {steps} steps, "
    f"{elapsed:.1f}s, {elapsed / steps * 1000:.1f} ms/step"
)
