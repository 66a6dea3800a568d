"""Parameters of an OpenVLA: their shapes (nothing allocated), a random init, fresh LoRA factors."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rl2vla_jax.models import lora as lora_lib
from rl2vla_jax.models.config import LoraConfig, OpenVLAConfig
from rl2vla_jax.models.openvla import OpenVLA

Params = Any


def param_shapes(model_config: OpenVLAConfig) -> Params:
    """The parameter tree as `jax.ShapeDtypeStruct`s: nothing is computed or allocated."""
    size = model_config.image_size
    pixel_values = jnp.zeros((1, size, size, 6), jnp.float32)
    ids = jnp.ones((1, 3), jnp.int32)
    return jax.eval_shape(
        lambda r: OpenVLA(model_config).init(r, pixel_values, ids)["params"], jax.random.key(0)
    )


def init_params(
    model_config: OpenVLAConfig, rng: jax.Array, position_std: float = 0.02, layer_scale: float = 1e-5
) -> Params:
    """Randomly initialised parameters (base + LoRA factors when `model_config.lora` is set).

    The tree's structure comes from `jax.eval_shape(model.init)`; values are drawn on the host
    with numpy (compiling the threefry-based Flax initialisers costs ~30 s on a small CPU):
    kernels ~ N(0, 1/fan_in), embeddings/tokens/pos_embed ~ N(0, 0.02^2), lm_head ~ N(0, 1/d),
    norms 1, biases 0, LayerScale 1e-5, LoRA A ~ N(0, (1/r)^2), B = 0.

    `position_std` (the vision towers' pos_embed) and `layer_scale` (DINOv2's LayerScale) are the
    defaults of large-scale pre-training. A small tower trained from scratch on a few thousand
    frames learns where things are far sooner with position embeddings on the scale of the patch
    embeddings (~1) and blocks that start active (0.1): docs/results/cpu.md measures it.
    """
    shapes = param_shapes(model_config)
    seed = int(jax.random.randint(rng, (), 0, 2**31 - 1))
    generator = np.random.default_rng(seed)
    rank = model_config.lora.rank if model_config.lora else 1

    def draw(path, leaf):
        names = [getattr(k, "key", str(k)) for k in path]
        name, shape = names[-1], leaf.shape
        if name == lora_lib.LORA_B or name == "bias":
            value = np.zeros(shape)
        elif name == lora_lib.LORA_A:
            value = generator.normal(0.0, 1.0 / rank, shape)
        elif name in ("weight", "scale") and names[-2].startswith("ls"):
            value = np.full(shape, layer_scale)
        elif name in ("weight", "scale"):
            value = np.ones(shape)
        elif name == "kernel" and names[-2] == "lm_head":
            # Unit-scale logits. At 0.02 a small model's logits are ~0.1 and, the final norm
            # bounding |h|, LoRA could never sharpen them: RL from scratch would stay uniform.
            value = generator.normal(0.0, shape[0] ** -0.5, shape)
        elif name == "kernel":
            fan_in = (
                int(np.prod(shape[-4:-1])) if len(shape) >= 4 and names[-2] == "patch_embed" else shape[-2]
            )
            value = generator.normal(0.0, fan_in**-0.5, shape)
        elif name == "pos_embed":
            value = generator.normal(0.0, position_std, shape)
        else:  # embeddings, cls/reg tokens
            value = generator.normal(0.0, 0.02, shape)
        return jnp.asarray(value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def add_lora(params: Params, model_config: OpenVLAConfig, lora: LoraConfig, rng: jax.Array):
    """Base params (e.g. from `checkpoints.load_policy`) -> (params with fresh LoRA factors, config).

    A ~ N(0, (1/r)^2), B = 0, so the adapted model starts equal to the base model. Factors
    already present (an imported adapter) are kept.
    """
    cfg = model_config.replace(lora=lora)
    size = cfg.image_size
    shapes = jax.eval_shape(
        lambda r: OpenVLA(cfg).init(r, jnp.zeros((1, size, size, 6)), jnp.ones((1, 3), jnp.int32))["params"],
        rng,
    )
    generator = np.random.default_rng(int(jax.random.randint(rng, (), 0, 2**31 - 1)))

    def fill(path, leaf):
        node = params
        try:
            for key in path:
                node = node[key.key]
            return node
        except KeyError:
            name = path[-1].key
            if name == lora_lib.LORA_A:
                return jnp.asarray(generator.normal(0.0, 1.0 / lora.rank, leaf.shape), leaf.dtype)
            if name == lora_lib.LORA_B:
                return jnp.zeros(leaf.shape, leaf.dtype)
            raise

    return jax.tree_util.tree_map_with_path(fill, shapes), cfg
