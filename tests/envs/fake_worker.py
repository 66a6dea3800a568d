"""A stand-in simulator worker speaking cpu_worker's pipe protocol, with no simulator: a step
whose action[0] is HANG never answers (a hung solver); images are the step count."""

import time

import numpy as np

HANG = 1e6
SIZE = 7


def worker_main(conn, env_id, image_size, max_episode_steps, env_options) -> None:
    conn.send(("ready", None))
    steps = 0
    while True:
        command, data = conn.recv()
        if command == "reset":
            steps = 0
            conn.send(("ok", np.zeros((SIZE, SIZE, 3), np.uint8), f"task {data}", {}))
        elif command == "step":
            if float(data[0]) == HANG:
                time.sleep(3600)
            steps += 1
            image = np.full((SIZE, SIZE, 3), steps, np.uint8)
            conn.send(("ok", image, float(data[1]), {"success": steps >= 2}, 0.0))
        else:
            break
