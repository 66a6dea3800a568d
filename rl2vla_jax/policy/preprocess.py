"""OpenVLA's image preprocessing (the HF PrismaticProcessor), split where the work lives.

Host: RGB -> resize to S x S with PIL BICUBIC (aspect ratio ignored), kept as uint8 (what a
rollout stores). Device (inside the jitted steps): /255, then channels 0-2
(x - imagenet_mean) / imagenet_std for DINOv2 and channels 3-5 (x - 0.5) / 0.5 for SigLIP.
PIL on purpose: jax.image.resize's bicubic differs from PIL's by up to 0.08.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

DINO_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
DINO_STD = np.array([0.229, 0.224, 0.225], np.float32)
SIGLIP_MEAN = np.array([0.5, 0.5, 0.5], np.float32)
SIGLIP_STD = np.array([0.5, 0.5, 0.5], np.float32)


def resize_image(image: Image.Image | np.ndarray, size: int) -> np.ndarray:
    """One image (PIL in any mode, or uint8 [H, W, 3]) -> uint8 [S, S, 3]."""
    if isinstance(image, np.ndarray) and image.shape[:2] == (size, size):
        return image
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image, np.uint8))
    return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))


def resize_images(images, size: int):
    """Frames [B, H, W, 3] uint8 -> [B, S, S, 3] uint8: with PIL on the host for host arrays
    (and lists of PIL images); frames already on an accelerator are resized there."""
    if isinstance(images, jax.Array):
        if images.shape[1:3] == (size, size):
            return images
        resized = jax.image.resize(images.astype(jnp.float32), (images.shape[0], size, size, 3), "bicubic")
        return jnp.clip(jnp.round(resized), 0, 255).astype(jnp.uint8)
    return np.stack([resize_image(image, size) for image in images])


def pixel_values(images: jax.Array) -> jax.Array:
    """uint8 [..., S, S, 3] -> float32 [..., S, S, 6], OpenVLA's two normalisations."""
    x = jnp.asarray(images).astype(jnp.float32) / 255.0
    dino = (x - DINO_MEAN) / DINO_STD
    siglip = (x - SIGLIP_MEAN) / SIGLIP_STD
    return jnp.concatenate([dino, siglip], axis=-1)


def preprocess_images(images, size: int) -> np.ndarray:
    """The whole processor on a batch (PIL images or uint8 arrays) -> float32 [B, S, S, 6]."""
    return np.asarray(pixel_values(resize_images(images, size)))
