"""OpenVLA's image preprocessing (the HF PrismaticProcessor), on the host with PIL.

RGB -> resize to S x S with PIL BICUBIC (aspect ratio ignored) -> /255 ->
channels 0-2: (x - imagenet_mean) / imagenet_std (DINOv2), channels 3-5: (x - 0.5) / 0.5
(SigLIP). PIL is used on purpose: jax.image.resize's bicubic differs from PIL by up to 0.08.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DINO_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
DINO_STD = np.array([0.229, 0.224, 0.225], np.float32)
SIGLIP_MEAN = np.array([0.5, 0.5, 0.5], np.float32)
SIGLIP_STD = np.array([0.5, 0.5, 0.5], np.float32)


def preprocess_image(image: Image.Image | np.ndarray, image_size: int = 224) -> np.ndarray:
    """One image (PIL, or uint8 [H, W, 3]) -> float32 [S, S, 6]."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image, np.uint8))
    image = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BICUBIC)
    x = np.asarray(image, np.float32) / 255.0
    return np.concatenate([(x - DINO_MEAN) / DINO_STD, (x - SIGLIP_MEAN) / SIGLIP_STD], axis=-1)


def preprocess_images(images, image_size: int = 224) -> np.ndarray:
    """A batch (sequence of PIL images or uint8 [B, H, W, 3]) -> float32 [B, S, S, 6]."""
    return np.stack([preprocess_image(im, image_size) for im in images])
