"""Zero-copy hand-over between the simulator's torch tensors and JAX arrays, through DLPack.

Zero-copy holds for compact (contiguous), suitably aligned tensors on the same device; the
simulator reuses its render and state buffers, so callers must `clone()` a tensor the
simulator will overwrite before handing it over.
"""

from __future__ import annotations

import jax
import torch


def torch_to_jax(tensor: torch.Tensor) -> jax.Array:
    """A JAX array sharing `tensor`'s memory (made contiguous first if it is not)."""
    return jax.dlpack.from_dlpack(tensor.contiguous())


def jax_to_torch(array: jax.Array) -> torch.Tensor:
    """A torch tensor sharing `array`'s memory."""
    return torch.from_dlpack(array)
