"""A small synthetic demonstration set written with the project's own writer: the action is a
function of the image (red frame -> one action, blue frame -> another), so held-out episodes
can be predicted only by reading the image."""

import numpy as np
import pytest

from rl2vla_jax.data import demos

ACTIONS = {
    "red": np.array([0.05, -0.03, 0.08, 0.004, -0.01, 0.06, 1.0], np.float32),
    "blue": np.array([-0.07, 0.04, -0.02, -0.006, 0.012, -0.05, 0.0], np.float32),
}
COLOURS = {"red": (200, 30, 40), "blue": (20, 40, 210)}


def write_synthetic_demos(directory, episodes=12, steps=5, size=32, seed=0) -> str:
    rng = np.random.default_rng(seed)
    writer = demos.DemoWriter(str(directory), episodes_per_shard=5)
    for episode in range(episodes):
        records, actions = [], []
        for t in range(steps):
            kind = "red" if rng.random() < 0.5 else "blue"
            image = np.clip(
                np.array(COLOURS[kind])[None, None] + rng.normal(0, 20, (size, size, 3)), 0, 255
            ).astype(np.uint8)
            action = ACTIONS[kind]
            step = dict(
                episode=episode, step=t, image=image, instruction="put the carrot on the plate",
                action=action, proprio=np.zeros(8, np.float32), reward=0.0, is_first=t == 0,
                is_last=t == steps - 1, success=False, episode_success=True,
            )  # fmt: skip
            records.append(demos.encode_step(step))
            actions.append(action)
        writer.add_episode(episode, records, np.stack(actions), np.zeros((steps, 8), np.float32), True)
    writer.close()
    return str(directory)


@pytest.fixture(scope="session")
def synthetic_demos(tmp_path_factory):
    return write_synthetic_demos(tmp_path_factory.mktemp("demos"))
