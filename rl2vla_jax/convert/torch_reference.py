"""A PyTorch reference of OpenVLA's architecture, for parity tests and benchmarks.

transformers 5.x cannot run the upstream OpenVLA remote code unpatched, so the reference is
assembled from the same parts upstream uses: two timm ViTs created exactly as Prismatic does
(`timm.create_model(id, pretrained=False, num_classes=0, img_size=...)`, features from
`get_intermediate_layers(n={depth - 2})`, LayerScale's `gamma` renamed `scale_factor` as
OpenVLA's HF port does), the fused GELU-MLP projector, and a plain
`transformers.LlamaForCausalLM` fed `[emb(BOS), projector(features), emb(rest)]` as
`inputs_embeds`. Parameter names therefore match the HF checkpoint
(`vision_backbone.featurizer.*`, `projector.fc1.*`, `language_model.model.*`, ...).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import timm
import torch
import transformers
from safetensors.torch import save_file
from torch import nn

DINO_ID = "vit_large_patch14_reg4_dinov2.lvd142m"
SIGLIP_ID = "vit_so400m_patch14_siglip_224"


class ScaleFactorLayerScale(nn.Module):
    """OpenVLA's patched LayerScale: HF's loader mangles parameters named `gamma`."""

    def __init__(self, gamma: torch.Tensor):
        super().__init__()
        self.scale_factor = nn.Parameter(gamma.detach().clone())

    def forward(self, x):
        return x * self.scale_factor


def _create_tower(timm_id: str, image_size: int, kwargs: dict) -> nn.Module:
    tower = timm.create_model(timm_id, pretrained=False, num_classes=0, img_size=image_size, **kwargs)
    for block in tower.blocks:
        for name in ("ls1", "ls2"):
            layer = getattr(block, name)
            if isinstance(layer, timm.layers.LayerScale):
                setattr(block, name, ScaleFactorLayerScale(layer.gamma))
    return tower


class FusedProjector(nn.Module):
    def __init__(self, vision_dim: int, llm_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(vision_dim, 4 * vision_dim)
        self.fc2 = nn.Linear(4 * vision_dim, llm_dim)
        self.fc3 = nn.Linear(llm_dim, llm_dim)
        self.act = nn.GELU()

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class VisionBackbone(nn.Module):
    def __init__(self, hf_config: dict):
        super().__init__()
        ids, sizes = hf_config["timm_model_ids"], hf_config["image_sizes"]
        kwargs = hf_config.get("timm_model_kwargs") or [{}, {}]
        self.featurizer = _create_tower(ids[0], sizes[0], kwargs[0])
        self.fused_featurizer = _create_tower(ids[1], sizes[1], kwargs[1])

    def tower_features(self, pixel_values: torch.Tensor):
        """[B, 6, H, W] -> (dino [B, N, Dd], siglip [B, N, Ds]) from block index depth-2."""
        outs = []
        for tower, image in (
            (self.featurizer, pixel_values[:, :3]),
            (self.fused_featurizer, pixel_values[:, 3:]),
        ):
            outs.append(tower.get_intermediate_layers(image, n={len(tower.blocks) - 2})[0])
        return tuple(outs)

    def forward(self, pixel_values):
        return torch.cat(self.tower_features(pixel_values), dim=-1)


def llama_config(hf_config: dict) -> transformers.LlamaConfig:
    text = {
        k: v for k, v in hf_config["text_config"].items() if k not in ("model_type", "torch_dtype", "dtype")
    }
    return transformers.LlamaConfig(**text, attn_implementation="eager", tie_word_embeddings=False)


class TorchOpenVLA(nn.Module):
    def __init__(self, hf_config: dict):
        super().__init__()
        self.vision_backbone = VisionBackbone(hf_config)
        vision_dim = (
            self.vision_backbone.featurizer.embed_dim + self.vision_backbone.fused_featurizer.embed_dim
        )
        lm_config = llama_config(hf_config)
        self.projector = FusedProjector(vision_dim, lm_config.hidden_size)
        self.language_model = transformers.LlamaForCausalLM(lm_config)

    def input_embeddings(self, pixel_values, input_ids):
        patches = self.projector(self.vision_backbone(pixel_values))
        tokens = self.language_model.get_input_embeddings()(input_ids)
        return torch.cat([tokens[:, :1], patches.to(tokens.dtype), tokens[:, 1:]], dim=1)

    def forward(self, pixel_values, input_ids):
        """Full logits [B, L + N, vocab]; pixel_values [B, 6, H, W] (torch layout)."""
        embeds = self.input_embeddings(pixel_values, input_ids)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        return self.language_model(inputs_embeds=embeds, attention_mask=mask).logits

    @torch.no_grad()
    def greedy_action(self, pixel_values, input_ids, action_begin: int, action_end: int, num_tokens: int = 7):
        """Manual greedy loop restricted to the action ids, no cache: (ids [B, 7], logits [B, 7, n])."""
        ids, logits_seq = input_ids, []
        for _ in range(num_tokens):
            logits = self.forward(pixel_values, ids)[:, -1, action_begin:action_end].float()
            logits_seq.append(logits)
            ids = torch.cat([ids, (logits.argmax(-1) + action_begin)[:, None]], dim=1)
        return ids[:, input_ids.shape[1] :], torch.stack(logits_seq, 1)


def randomise_(model: nn.Module, seed: int) -> None:
    """Re-draw every parameter (never default init) at scales that keep activations O(1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "scale_factor":
                value = 0.5 + 0.3 * torch.rand(p.shape, generator=gen)
            elif ("norm" in name or "layernorm" in name) and leaf == "weight":
                value = 1.0 + 0.2 * torch.randn(p.shape, generator=gen)
            elif leaf == "bias":
                value = 0.1 * torch.randn(p.shape, generator=gen)
            elif p.ndim >= 2 and "embed" not in name and "token" not in name and "latent" not in name:
                fan_in = math.prod(p.shape[1:])
                value = torch.randn(p.shape, generator=gen) / math.sqrt(fan_in)
            else:  # embeddings, cls/reg tokens, pos_embed
                value = 0.5 * torch.randn(p.shape, generator=gen)
            p.copy_(value.to(p.dtype))


def hf_config(
    dino: dict,
    siglip: dict,
    text: dict,
    image_size: int,
    norm_stats: dict | None = None,
    vocab_size: int = 448,
) -> dict:
    """config.json of an OpenVLA in the HF layout; `text` lists only non-default Llama fields."""
    return {
        "architectures": ["OpenVLAForActionPrediction"],
        "model_type": "openvla",
        "vision_backbone_id": "dinosiglip-vit-so-224px",
        "llm_backbone_id": "llama2-7b-pure",
        "arch_specifier": "no-align+fused-gelu-mlp",
        "use_fused_vision_backbone": True,
        "image_resize_strategy": "resize-naive",
        "timm_model_ids": [DINO_ID, SIGLIP_ID],
        "timm_override_act_layers": [None, None],
        "timm_model_kwargs": [dino, siglip],
        "image_sizes": [image_size, image_size],
        "text_config": {
            "model_type": "llama",
            "vocab_size": vocab_size,
            "pad_token_id": vocab_size - 64,
            "torch_dtype": "float32",
            **text,
        },
        "pad_token_id": vocab_size - 64,
        "pad_to_multiple_of": 64,
        "n_action_bins": 256,
        "norm_stats": norm_stats or {},
        "torch_dtype": "float32",
    }


def tiny_hf_config(norm_stats: dict | None = None) -> dict:
    """A tiny OpenVLA with odd, distinct sizes (the parity tests' model)."""
    return hf_config(
        dino={"embed_dim": 24, "depth": 3, "num_heads": 3, "mlp_ratio": 1.75, "patch_size": 7},
        siglip={"embed_dim": 20, "depth": 4, "num_heads": 2, "mlp_ratio": 1.85, "patch_size": 7},
        text={
            "hidden_size": 40,
            "intermediate_size": 68,
            "num_hidden_layers": 3,
            "num_attention_heads": 5,
            "max_position_embeddings": 256,
        },
        image_size=28,
        norm_stats=norm_stats,
    )


def save_hf_checkpoint(model: nn.Module, hf_config: dict, out_dir: str, num_shards: int = 3, tokenizer=None):
    """HF sharded layout: model-0000i-of-0000n.safetensors + model.safetensors.index.json."""
    os.makedirs(out_dir, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    keys = list(state)
    chunks = np.array_split(np.arange(len(keys)), num_shards)
    weight_map, total = {}, 0
    for i, chunk in enumerate(chunks):
        name = f"model-{i + 1:05d}-of-{num_shards:05d}.safetensors"
        shard = {keys[j]: state[keys[j]] for j in chunk}
        save_file(shard, os.path.join(out_dir, name), metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
        total += sum(t.numel() * t.element_size() for t in shard.values())
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config, f, indent=2)
    if tokenizer is not None:
        import shutil

        shutil.copy(tokenizer, os.path.join(out_dir, "tokenizer.model"))


def lora_target_regex(head_and_patch_embed: bool = True) -> str:
    """PEFT target_modules as OpenVLA fine-tunes (what peft 0.11.1's "all-linear" selects on
    OpenVLA): every nn.Linear, the LM head included, and both patch-embedding convs; with
    `head_and_patch_embed=False` only the Linears of the towers' blocks, projector and LLM layers."""
    extra = r"|vision_backbone\.(featurizer|fused_featurizer)\.patch_embed\.proj|language_model\.lm_head"
    return (
        r".*(vision_backbone\.(featurizer|fused_featurizer)\.(blocks\.\d+\.(attn\.(qkv|proj)|mlp\.fc[12])"
        r"|attn_pool\.(q|kv|proj|mlp\.fc[12]))"
        r"|projector\.fc[123]"
        r"|language_model\.model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)"
        + (extra if head_and_patch_embed else "")
        + ")"
    )
