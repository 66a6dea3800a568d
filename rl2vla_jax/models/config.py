"""Model configuration: one frozen dataclass tree describes every OpenVLA size.

The dataclasses are frozen (hashable) so a config can be a static argument of `jax.jit`;
`to_dict`/`from_dict` give the plain-JSON form stored in a checkpoint's `assets`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

# Regexes over '/'-joined Flax parameter paths. The default is what OpenVLA's fine-tuning
# adapts (peft 0.11.1, target_modules="all-linear"): every Linear, the LM head included, plus
# both towers' patch-embedding convs (timm's `patch_embed.proj` ends in "proj"); measured with
# upstream code, see docs/model.md. Modules the forward never runs (each tower's last block,
# SigLIP's MAP head) do not exist here.
DEFAULT_LORA_TARGETS = (
    r"vision/(dino|siglip)/patch_embed$",
    r"vision/(dino|siglip)/blocks/(attn/(qkv|proj)|mlp/(fc1|fc2))$",
    r"projector/fc[123]$",
    r"llm/layers/(self_attn/(q|k|v|o)_proj|mlp/(gate|up|down)_proj)$",
    r"llm/lm_head$",
)


@dataclasses.dataclass(frozen=True)
class VitConfig:
    """A timm-style ViT tower. `depth` is the checkpoint's depth; only depth-1 blocks run
    because OpenVLA reads the output of block index depth-2."""

    width: int
    depth: int
    num_heads: int
    mlp_dim: int
    patch_size: int = 14
    image_size: int = 224
    num_registers: int = 0
    class_token: bool = False
    layer_scale: bool = False
    layer_norm_eps: float = 1e-6

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_prefix_tokens(self) -> int:
        return int(self.class_token) + self.num_registers


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    rank: int = 32
    alpha: float = 16.0
    targets: tuple[str, ...] = DEFAULT_LORA_TARGETS

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


@dataclasses.dataclass(frozen=True)
class OpenVLAConfig:
    dino: VitConfig
    siglip: VitConfig
    llm: LlamaConfig
    # The tokenizer's base vocab is llm.vocab_size - pad_to_multiple_of (32000 at 7B); the
    # action tokens are its last n_action_bins ids.
    pad_to_multiple_of: int = 64
    n_action_bins: int = 256
    action_dim: int = 7
    param_dtype: str = "float32"
    compute_dtype: str = "float32"
    # None (no remat), "full" (save nothing inside a layer) or "dots" (save matmul outputs).
    remat_policy: str | None = None
    # Layers per scan iteration (1 = compile time independent of depth). Unrolling trades
    # compile time for speed where XLA handles while-loops poorly (CPU backward passes).
    scan_unroll: int = 1
    lora: LoraConfig | None = None

    @property
    def vision_dim(self) -> int:
        return self.dino.width + self.siglip.width

    @property
    def num_patches(self) -> int:
        return self.dino.num_patches

    @property
    def image_size(self) -> int:
        return self.dino.image_size

    @property
    def action_token_end(self) -> int:
        """One past the largest action id (32000 at 7B)."""
        return self.llm.vocab_size - self.pad_to_multiple_of

    @property
    def action_token_begin(self) -> int:
        """Vocab id of action bin index 0 (31744 at 7B)."""
        return self.action_token_end - self.n_action_bins

    def replace(self, **changes: Any) -> OpenVLAConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OpenVLAConfig:
        d = dict(d)
        lora = d.pop("lora", None)
        if lora is not None:
            lora = LoraConfig(**{**lora, "targets": tuple(lora["targets"])})
        return cls(
            dino=VitConfig(**d.pop("dino")),
            siglip=VitConfig(**d.pop("siglip")),
            llm=LlamaConfig(**d.pop("llm")),
            lora=lora,
            **d,
        )


def openvla_7b(**changes: Any) -> OpenVLAConfig:
    """openvla/openvla-7b: DINOv2 ViT-L/14-reg4 + SigLIP so400m/14 at 224 px, Llama-2-7B."""
    cfg = OpenVLAConfig(
        dino=VitConfig(
            width=1024,
            depth=24,
            num_heads=16,
            mlp_dim=4096,
            num_registers=4,
            class_token=True,
            layer_scale=True,
        ),
        siglip=VitConfig(width=1152, depth=27, num_heads=16, mlp_dim=4304),
        llm=LlamaConfig(
            vocab_size=32064,
            hidden_size=4096,
            intermediate_size=11008,
            num_layers=32,
            num_heads=32,
            num_kv_heads=32,
        ),
        param_dtype="bfloat16",
        compute_dtype="bfloat16",
        remat_policy="dots",
        lora=LoraConfig(),
    )
    return cfg.replace(**changes)


def tiny(**changes: Any) -> OpenVLAConfig:
    """A CPU-sized model with odd, distinct dims (a transposed axis cannot pass a test).

    Image 28 px with patch 7 gives 16 patches; vocab 448 = 384 tokenizer pieces + 64 padding,
    so the 256 action ids are 128..383 (see `rl2vla_jax.data.prompt.tiny_tokenizer`).
    """
    cfg = OpenVLAConfig(
        dino=VitConfig(
            width=24,
            depth=3,
            num_heads=3,
            mlp_dim=40,
            patch_size=7,
            image_size=28,
            num_registers=4,
            class_token=True,
            layer_scale=True,
        ),
        siglip=VitConfig(width=20, depth=4, num_heads=2, mlp_dim=36, patch_size=7, image_size=28),
        llm=LlamaConfig(
            vocab_size=448, hidden_size=40, intermediate_size=68, num_layers=3, num_heads=5, num_kv_heads=5
        ),
        lora=LoraConfig(rank=3, alpha=5.0),
    )
    return cfg.replace(**changes)


def small(**changes: Any) -> OpenVLAConfig:
    """The CPU experiment's model (docs/results/cpu.md): the real architecture at 64 px through
    8 px patches (64 patches, so a ~5 px object sits inside one patch), 64-wide towers, a
    3-layer 128-wide Llama; ~1.1 M parameters, all trained by SFT on 2 cores in minutes."""
    cfg = OpenVLAConfig(
        dino=VitConfig(
            width=64,
            depth=4,
            num_heads=4,
            mlp_dim=128,
            patch_size=8,
            image_size=64,
            num_registers=4,
            class_token=True,
            layer_scale=True,
        ),
        siglip=VitConfig(width=64, depth=4, num_heads=4, mlp_dim=128, patch_size=8, image_size=64),
        llm=LlamaConfig(
            vocab_size=448, hidden_size=128, intermediate_size=256, num_layers=3, num_heads=4, num_kv_heads=4
        ),
        lora=LoraConfig(rank=8, alpha=16.0),
    )
    return cfg.replace(**changes)


def small_2layer(**changes: Any) -> OpenVLAConfig:
    """`small` with a 2-layer Llama. exp23 (docs/results/cpu.md, 2-core AMD EPYC): SFT steps ~25%
    shorter, but 21% train-split success where `small` reached 53%, so not the preset."""
    cfg = small()
    return cfg.replace(llm=dataclasses.replace(cfg.llm, num_layers=2), **changes)


PRESETS = {"tiny": tiny, "small": small, "small_2layer": small_2layer, "openvla_7b": openvla_7b}


def get_preset(name: str, **changes: Any) -> OpenVLAConfig:
    return PRESETS[name](**changes)
