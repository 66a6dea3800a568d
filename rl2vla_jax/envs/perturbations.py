"""Image-space perturbations of RL4VLA's vision settings, applied to rendered frames.

Both redraw their pattern every frame from (episode seed, step), so a rollout is reproducible
and two envs with different seeds see different patterns. They work on torch uint8
[B, H, W, 3] tensors on whatever device the simulator renders to.
"""

from __future__ import annotations

import numpy as np
import torch


def _frame_rng(seed: int, step: int) -> np.random.RandomState:
    return np.random.RandomState((seed * 1_000_003 + step * 7919) % (2**32))


def dynamic_texture(height: int, width: int, seeds: list[int], step: int, device) -> torch.Tensor:
    """A two-colour stripe texture per env, new frequency/angle/phase/colours each frame. [B,H,W,3] float 0-255."""
    ys, xs = torch.meshgrid(
        torch.linspace(0, 1, height, device=device), torch.linspace(0, 1, width, device=device), indexing="ij"
    )
    textures = []
    for seed in seeds:
        rng = _frame_rng(seed, step)
        colours = torch.tensor(rng.uniform(0, 255, size=(2, 3)), dtype=torch.float32, device=device)
        frequency = rng.uniform(8, 30)
        angle = rng.uniform(0, np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        wave = torch.sin(frequency * (xs * np.cos(angle) + ys * np.sin(angle)) * 2 * np.pi / 4 + phase)
        textures.append(torch.where((wave > 0)[..., None], colours[0], colours[1]))
    return torch.stack(textures)


def blend_dynamic_texture(
    rgb: torch.Tensor, mask: torch.Tensor, weight: float, seeds: list[int], step: int
) -> torch.Tensor:
    """Blend a per-frame texture over the masked (robot and object) pixels: (1-w)*rgb + w*texture."""
    batch, height, width, _ = rgb.shape
    texture = dynamic_texture(height, width, seeds[:batch], step, rgb.device)
    blended = (1 - weight) * rgb.float() + weight * texture
    out = torch.where(mask[..., None], blended, rgb.float())
    return out.round().clamp(0, 255).to(torch.uint8)


def blend_image_noise(rgb: torch.Tensor, weight: float, seeds: list[int], step: int) -> torch.Tensor:
    """Blend uniform noise over the whole frame: (1-w)*rgb + w*noise."""
    batch, height, width, channels = rgb.shape
    noise = torch.stack(
        [
            torch.as_tensor(
                _frame_rng(seed, step).uniform(0, 255, size=(height, width, channels)),
                dtype=torch.float32,
                device=rgb.device,
            )
            for seed in seeds[:batch]
        ]
    )
    return ((1 - weight) * rgb.float() + weight * noise).round().clamp(0, 255).to(torch.uint8)
