"""Contact sheets of every suite: the first frame of each setting, labelled.

    python -m rl2vla_jax.envs.gallery --out=docs/gallery [--seed=0] [--image_size=224]

Writes one PNG per suite (`<suite>.png`). A suite whose simulator is not installed (RL4VLA's
fork) gets a sheet that says so on every tile instead of failing.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np
from absl import flags
from PIL import Image, ImageDraw

from rl2vla_jax import cli
from rl2vla_jax.envs import suites

COLUMNS = 6
LABEL_HEIGHT = 44

_OUT = flags.DEFINE_string("out", "docs/gallery", "directory for the contact sheets")
_SEED = flags.DEFINE_integer("seed", 0, "episode seed of every first frame (same layout across settings)")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "camera resolution", lower_bound=16)


def first_frame(entry: suites.SuiteEntry, seed: int, image_size: int) -> tuple[np.ndarray, str]:
    import gymnasium as gym

    from rl2vla_jax.envs.actions import CONTROL_MODE

    kwargs = dict(image_size=image_size) if entry.suite == "ours" else dict(entry.options)
    env = gym.make(entry.env_id, num_envs=1, obs_mode="rgb", control_mode=CONTROL_MODE, **kwargs)
    try:
        obs, _ = env.reset(seed=seed)
        images = [v["rgb"] for v in obs["sensor_data"].values() if "rgb" in v]
        instruction = getattr(env.unwrapped, "instructions", [""])[0]
        return images[0][0].cpu().numpy(), instruction
    finally:
        env.close()


def _tile(image: np.ndarray | None, title: str, caption: str, size: int) -> Image.Image:
    tile = Image.new("RGB", (size, size + LABEL_HEIGHT), "white")
    if image is not None:
        tile.paste(Image.fromarray(image).resize((size, size)), (0, LABEL_HEIGHT))
    else:
        ImageDraw.Draw(tile).text((6, LABEL_HEIGHT + 6), "\n".join(textwrap.wrap(caption, 34)), fill="black")
        caption = "unavailable"
    draw = ImageDraw.Draw(tile)
    draw.text((4, 2), title, fill="black")
    draw.text((4, 16), "\n".join(textwrap.wrap(caption, 40)[:2]), fill=(60, 60, 160))
    return tile


def contact_sheet(suite: str, seed: int = 0, image_size: int = 224) -> Image.Image:
    entries = list(suites.SUITES[suite].values())
    try:
        suites.get_setting(suite, entries[0].setting)
        reason = None
    except suites.Rl4vlaUnavailable as error:
        reason = str(error)
    tiles = []
    for entry in entries:
        title = f"{entry.setting} [{entry.split}, {entry.category}]"
        if reason is None:
            image, instruction = first_frame(entry, seed, image_size)
            tiles.append(_tile(image, title, instruction, image_size))
        else:
            tiles.append(_tile(None, title, f"{entry.env_id}: {reason}", image_size))
    rows = (len(tiles) + COLUMNS - 1) // COLUMNS
    width, height = tiles[0].size
    sheet = Image.new("RGB", (COLUMNS * width, rows * height), (230, 230, 230))
    for index, tile in enumerate(tiles):
        sheet.paste(tile, ((index % COLUMNS) * width, (index // COLUMNS) * height))
    return sheet


def main(argv):
    del argv  # cli.run has refused positional arguments
    os.makedirs(_OUT.value, exist_ok=True)
    for suite in suites.SUITES:
        path = os.path.join(_OUT.value, f"{suite}.png")
        contact_sheet(suite, _SEED.value, _IMAGE_SIZE.value).save(path)
        print(path)


if __name__ == "__main__":
    cli.run(main)
