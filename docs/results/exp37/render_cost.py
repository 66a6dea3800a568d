"""exp37: what a 64 px frame of the preset's scene costs with parts of the robot or the ground not drawn.

One simulator process at the preset's collection settings (configs/sft.py:experiment), reset on
seed 5; 4 rounds of 50 frames (update_render, capture, read the rgb image) per variant.
"""

import os
import statistics
import sys
import time

import sapien

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
from configs import sft  # noqa: E402
from rl2vla_jax.envs import demo_collection  # noqa: E402

config = sft.get_config("experiment")
env_options = {"camera": config.env.camera, "layout": config.env.layout}
demo_collection._init_worker("train", config.env.image_size, 40, env_options, 10, 0.0, 0.04)
env = demo_collection._worker_state["env"]
env.reset(seed=5)
unwrapped = env.unwrapped
unwrapped.cull_out_of_view = False  # draw everything unless a variant hides it
sensor = unwrapped._sensors["base_camera"]
bodies = {
    entity.name: component
    for entity in unwrapped.scene.sub_scenes[0].entities
    for component in entity.components
    if isinstance(component, sapien.render.RenderBodyComponent)
}


def ms_per_frame(hidden: list[str], frames: int = 50) -> float:
    for name in hidden:
        bodies[name].disable()
    started = time.perf_counter()
    for _ in range(frames):
        unwrapped.scene.update_render()
        sensor.capture()
        sensor.get_obs(rgb=True)
    elapsed = (time.perf_counter() - started) / frames * 1000
    for name in hidden:
        bodies[name].enable()
    return elapsed


variants = {
    "everything": [],
    "without links 2-4 (out of view)": ["panda_link2", "panda_link3", "panda_link4"],
    "without the robot": [name for name in bodies if name.startswith("panda")],
    "without the ground": ["scene-0_ground"],
}
times = {name: [] for name in variants}
for _ in range(4):
    for name, hidden in variants.items():
        times[name].append(ms_per_frame(hidden))
for name, values in times.items():
    print(f"{name}: median {statistics.median(values):.1f} ms per frame ({', '.join(f'{v:.1f}' for v in values)})")
