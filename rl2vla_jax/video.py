"""MP4 videos of camera frames (training iterations, evaluation episodes)."""

import os

import numpy as np


def write_video(path: str, frames: list[np.ndarray], fps: int = 5) -> None:
    import imageio.v2 as imageio  # its ffmpeg plugin loads slowly: only when a video is written

    os.makedirs(os.path.dirname(path), exist_ok=True)
    imageio.mimwrite(path, [np.asarray(f, np.uint8) for f in frames], fps=fps, macro_block_size=1)
