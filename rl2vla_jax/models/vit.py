"""The two timm ViT towers of OpenVLA's fused "dinosiglip" backbone, in Flax.

Block (timm, pre-norm):   x = x + ls1 * attn(LN1(x));   x = x + ls2 * mlp(LN2(x))
with mlp = fc2(GELU_erf(fc1(.))) and ls = LayerScale (DINOv2 only; identity for SigLIP).
Token sequence: DINOv2 = [cls, reg x R, patches + pos_embed] (pos_embed on patches only);
SigLIP = [patches + pos_embed]. OpenVLA reads the output of block index depth-2, without
the final norm, and drops the prefix tokens; so only depth-1 blocks are built here, and
the checkpoint's last block, final norm and SigLIP MAP head are never used.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rl2vla_jax.models.attention import dot_product_attention
from rl2vla_jax.models.config import LoraConfig, VitConfig
from rl2vla_jax.models.lora import LORA_A, LORA_B, Linear, is_lora_target, module_path


def exact_gelu(x: jax.Array) -> jax.Array:
    # Flax's default GELU is the tanh approximation (off by ~5e-4); torch's nn.GELU is erf.
    return nn.gelu(x, approximate=False)


def remat_policy(name: str | None):
    return {
        "full": jax.checkpoint_policies.nothing_saveable,
        "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    }[name]


def scan_layers(
    block_cls: type[nn.Module],
    length: int,
    remat: str | None,
    broadcast_args: int,
    scanned_args: int = 0,
    unroll: int = 1,
):
    """nn.scan over `length` copies of `block_cls` (params stacked on axis 0), optionally remat.

    The block is called as block(carry, *scanned, *broadcast) -> (carry, per-layer output).
    """
    if remat is not None:
        block_cls = nn.remat(block_cls, policy=remat_policy(remat), prevent_cse=False)
    return nn.scan(
        block_cls,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=(0,) * scanned_args + (nn.broadcast,) * broadcast_args,
        length=length,
        unroll=unroll,
    )


class LayerScale(nn.Module):
    width: int
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.constant(1e-5), (self.width,), self.param_dtype)
        return x * scale.astype(x.dtype)


class VitAttention(nn.Module):
    config: VitConfig
    dtype: Any
    param_dtype: Any
    lora: LoraConfig | None

    @nn.compact
    def __call__(self, x):
        cfg = self.config
        batch, seq, width = x.shape
        head_dim = width // cfg.num_heads
        dense = dict(dtype=self.dtype, param_dtype=self.param_dtype, lora=self.lora)
        qkv = Linear(3 * width, name="qkv", **dense)(x)
        # timm's fused qkv output is laid out [3, heads, head_dim].
        qkv = qkv.reshape(batch, seq, 3, cfg.num_heads, head_dim)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        out = dot_product_attention(q, k, v, None, self.dtype)
        return Linear(width, name="proj", **dense)(out)


class VitMlp(nn.Module):
    hidden: int
    width: int
    dtype: Any
    param_dtype: Any
    lora: LoraConfig | None

    @nn.compact
    def __call__(self, x):
        common = dict(dtype=self.dtype, param_dtype=self.param_dtype, lora=self.lora)
        return Linear(self.width, name="fc2", **common)(
            exact_gelu(Linear(self.hidden, name="fc1", **common)(x))
        )


class VitBlock(nn.Module):
    config: VitConfig
    dtype: Any
    param_dtype: Any
    lora: LoraConfig | None

    @nn.compact
    def __call__(self, x, _=None):
        cfg = self.config
        common = dict(dtype=self.dtype, param_dtype=self.param_dtype)

        def layer_norm(name):
            return nn.LayerNorm(epsilon=cfg.layer_norm_eps, name=name, **common)

        def layer_scale(name):
            return LayerScale(cfg.width, self.param_dtype, name=name) if cfg.layer_scale else (lambda y: y)

        attn = VitAttention(cfg, self.dtype, self.param_dtype, self.lora, name="attn")
        x = x + layer_scale("ls1")(attn(layer_norm("norm1")(x)))
        h = layer_norm("norm2")(x)
        mlp = VitMlp(cfg.mlp_dim, cfg.width, self.dtype, self.param_dtype, self.lora, name="mlp")
        x = x + layer_scale("ls2")(mlp(h))
        return x, None


class PatchEmbed(nn.Module):
    """Non-overlapping p x p patches -> width: timm's strided conv `patch_embed.proj`, kernel HWIO.

    LoRA-able as PEFT adapts a Conv2d (OpenVLA's "all-linear" matches this `proj` too):
    A is a p x p stride-p conv to r channels [p, p, in, r], B a 1x1 conv, stored as [r, width].
    """

    width: int
    patch_size: int
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    lora: LoraConfig | None = None

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        p, channels = self.patch_size, images.shape[-1]
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (p, p, channels, self.width), self.param_dtype
        )
        bias = self.param("bias", nn.initializers.zeros, (self.width,), self.param_dtype)
        x = images.astype(self.dtype)

        def conv(k):
            return jax.lax.conv_general_dilated(
                x, k.astype(self.dtype), (p, p), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )

        y = conv(kernel) + bias.astype(self.dtype)
        if is_lora_target(module_path(self), self.lora):
            rank = self.lora.rank
            lora_a = self.param(
                LORA_A, nn.initializers.normal(1.0 / rank), (p, p, channels, rank), jnp.float32
            )
            lora_b = self.param(LORA_B, nn.initializers.zeros, (rank, self.width), jnp.float32)
            up = jnp.dot(conv(lora_a), lora_b.astype(self.dtype)) * self.lora.scale
            y = y + up.astype(y.dtype)
        return y


class VisionTower(nn.Module):
    """[B, H, W, 3] normalised image -> [B, num_patches, width] features of block depth-2."""

    config: VitConfig
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    remat: str | None = None
    lora: LoraConfig | None = None
    scan_unroll: int = 1

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        cfg = self.config
        patches = PatchEmbed(
            cfg.width, cfg.patch_size, self.dtype, self.param_dtype, self.lora, name="patch_embed"
        )(images)
        batch = patches.shape[0]
        patches = patches.reshape(batch, -1, cfg.width)
        pos_embed = self.param(
            "pos_embed", nn.initializers.normal(0.02), (1, cfg.num_patches, cfg.width), self.param_dtype
        )
        tokens = [patches + pos_embed.astype(self.dtype)]
        if cfg.num_registers:
            reg = self.param(
                "reg_token", nn.initializers.normal(0.02), (1, cfg.num_registers, cfg.width), self.param_dtype
            )
            tokens.insert(0, jnp.broadcast_to(reg, (batch, *reg.shape[1:])).astype(self.dtype))
        if cfg.class_token:
            cls = self.param("cls_token", nn.initializers.normal(0.02), (1, 1, cfg.width), self.param_dtype)
            tokens.insert(0, jnp.broadcast_to(cls, (batch, 1, cfg.width)).astype(self.dtype))
        x = jnp.concatenate(tokens, axis=1)
        blocks = scan_layers(VitBlock, cfg.depth - 1, self.remat, broadcast_args=1, unroll=self.scan_unroll)
        x, _ = blocks(cfg, self.dtype, self.param_dtype, self.lora, name="blocks")(x, None)
        return x[:, cfg.num_prefix_tokens :]


class FusedBackbone(nn.Module):
    """6-channel image (DINOv2 normalisation | SigLIP normalisation) -> [B, 256, dino+siglip]."""

    dino: VitConfig
    siglip: VitConfig
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    remat: str | None = None
    lora: LoraConfig | None = None
    scan_unroll: int = 1

    def setup(self):
        common = dict(
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            remat=self.remat,
            lora=self.lora,
            scan_unroll=self.scan_unroll,
        )
        self.dino_tower = VisionTower(self.dino, name="dino", **common)
        self.siglip_tower = VisionTower(self.siglip, name="siglip", **common)

    def __call__(self, pixel_values: jax.Array) -> jax.Array:
        return jnp.concatenate(self.tower_features(pixel_values), axis=-1)

    def tower_features(self, pixel_values: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.dino_tower(pixel_values[..., :3]), self.siglip_tower(pixel_values[..., 3:])
