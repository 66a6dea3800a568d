"""HF OpenVLA checkpoint -> rl2vla_jax params: config reading and the declarative key table.

The table maps a torch key template to (Flax path, transform). `{i}` in a template is a layer
index: such leaves are stacked along axis 0 (the scanned layers). Transforms:
  identity | linear: (out, in) -> (in, out) | conv: (O, I, kh, kw) -> (kh, kw, I, O).
Keys that exist upstream but are never used by OpenVLA's forward are skipped on purpose:
each tower's last block (features come from block depth-2), its final norm and SigLIP's MAP
head (`attn_pool`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

from rl2vla_jax.convert.safetensors_io import SafetensorsFile, shard_index
from rl2vla_jax.models.config import LlamaConfig, OpenVLAConfig, VitConfig

# timm architecture defaults of the towers OpenVLA uses, keyed by id without the pretrained tag.
TIMM_TOWERS = {
    "vit_large_patch14_reg4_dinov2": dict(
        embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4.0, patch_size=14, reg_tokens=4, class_token=True,
        init_values=1e-5,
    ),
    "vit_so400m_patch14_siglip_224": dict(
        embed_dim=1152, depth=27, num_heads=16, mlp_ratio=3.7362, patch_size=14, reg_tokens=0, class_token=False,
        init_values=None,
    ),
}  # fmt: skip

# transformers.LlamaConfig defaults: the HF config's text_config lists only what differs.
LLAMA_DEFAULTS = dict(
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=None,
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
)


class ConversionError(ValueError):
    pass


def _tower_config(timm_id: str, image_size: int, overrides: dict[str, Any]) -> VitConfig:
    base = timm_id.split(".")[0]
    if base not in TIMM_TOWERS:
        raise ConversionError(f"unsupported timm model id {timm_id!r} (known: {sorted(TIMM_TOWERS)})")
    args = {**TIMM_TOWERS[base], **overrides}
    return VitConfig(
        width=args["embed_dim"],
        depth=args["depth"],
        num_heads=args["num_heads"],
        mlp_dim=int(args["embed_dim"] * args["mlp_ratio"]),  # timm's rounding
        patch_size=args["patch_size"],
        image_size=image_size,
        num_registers=args["reg_tokens"],
        class_token=args["class_token"],
        layer_scale=args["init_values"] is not None,
    )


def model_config_from_hf(hf_config: dict[str, Any], dtype: str = "bfloat16") -> OpenVLAConfig:
    """OpenVLAConfig from an HF OpenVLA config.json (as a dict)."""
    ids = hf_config["timm_model_ids"]
    sizes = hf_config.get("image_sizes", [224, 224])
    kwargs = hf_config.get("timm_model_kwargs") or [{}] * len(ids)
    if len(ids) != 2:
        raise ConversionError(f"expected a fused backbone with 2 timm_model_ids, got {ids}")
    text = {**LLAMA_DEFAULTS, **hf_config.get("text_config", {})}
    rope = text.get("rope_parameters") or {}
    rope_theta = rope.get("rope_theta", text["rope_theta"])
    if (text.get("rope_scaling") or {}).get("rope_type", "default") != "default" or rope.get(
        "rope_type", "default"
    ) != "default":
        raise ConversionError("only the default RoPE is supported")
    llm = LlamaConfig(
        vocab_size=text["vocab_size"],
        hidden_size=text["hidden_size"],
        intermediate_size=text["intermediate_size"],
        num_layers=text["num_hidden_layers"],
        num_heads=text["num_attention_heads"],
        num_kv_heads=text["num_key_value_heads"] or text["num_attention_heads"],
        rms_norm_eps=float(text["rms_norm_eps"]),
        rope_theta=float(rope_theta),
    )
    return OpenVLAConfig(
        dino=_tower_config(ids[0], sizes[0], kwargs[0]),
        siglip=_tower_config(ids[1], sizes[1], kwargs[1]),
        llm=llm,
        pad_to_multiple_of=hf_config.get("pad_to_multiple_of", 64),
        n_action_bins=hf_config.get("n_action_bins", 256),
        param_dtype=dtype,
        compute_dtype=dtype,
        lora=None,
    )


def param_table(cfg: OpenVLAConfig) -> dict[str, tuple[str, str]]:
    """{torch key template: (flax path, transform)}; `{i}` = stacked layer index."""
    table: dict[str, tuple[str, str]] = {}
    for prefix, name, tower in (
        ("vision_backbone.featurizer.", "dino", cfg.dino),
        ("vision_backbone.fused_featurizer.", "siglip", cfg.siglip),
    ):
        flax = f"vision/{name}/"
        table[prefix + "patch_embed.proj.weight"] = (flax + "patch_embed/kernel", "conv")
        table[prefix + "patch_embed.proj.bias"] = (flax + "patch_embed/bias", "identity")
        table[prefix + "pos_embed"] = (flax + "pos_embed", "identity")
        if tower.class_token:
            table[prefix + "cls_token"] = (flax + "cls_token", "identity")
        if tower.num_registers:
            table[prefix + "reg_token"] = (flax + "reg_token", "identity")
        block, flax_block = prefix + "blocks.{i}.", flax + "blocks/"
        for norm in ("norm1", "norm2"):
            table[block + f"{norm}.weight"] = (flax_block + f"{norm}/scale", "identity")
            table[block + f"{norm}.bias"] = (flax_block + f"{norm}/bias", "identity")
        for linear in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"):
            path = flax_block + linear.replace(".", "/")
            table[block + f"{linear}.weight"] = (path + "/kernel", "linear")
            table[block + f"{linear}.bias"] = (path + "/bias", "identity")
        if tower.layer_scale:
            for ls in ("ls1", "ls2"):
                table[block + f"{ls}.scale_factor"] = (flax_block + f"{ls}/scale", "identity")
    for fc in ("fc1", "fc2", "fc3"):
        table[f"projector.{fc}.weight"] = (f"projector/{fc}/kernel", "linear")
        table[f"projector.{fc}.bias"] = (f"projector/{fc}/bias", "identity")
    lm = "language_model.model."
    table[lm + "embed_tokens.weight"] = ("llm/embed_tokens/embedding", "identity")
    layer = lm + "layers.{i}."
    for linear in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"):
        table[layer + f"{linear}.weight"] = ("llm/layers/" + linear.replace(".", "/") + "/kernel", "linear")
    for linear in ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
        table[layer + f"{linear}.weight"] = ("llm/layers/" + linear.replace(".", "/") + "/kernel", "linear")
    for norm in ("input_layernorm", "post_attention_layernorm"):
        table[layer + f"{norm}.weight"] = (f"llm/layers/{norm}/weight", "identity")
    table[lm + "norm.weight"] = ("llm/norm/weight", "identity")
    table["language_model.lm_head.weight"] = ("llm/lm_head/kernel", "linear")
    return table


def ignored_key_patterns(cfg: OpenVLAConfig) -> list[str]:
    """Regexes of checkpoint keys that OpenVLA's forward never reads."""
    out = []
    for prefix, tower in (
        ("vision_backbone\\.featurizer\\.", cfg.dino),
        ("vision_backbone\\.fused_featurizer\\.", cfg.siglip),
    ):
        out += [
            prefix + f"blocks\\.{tower.depth - 1}\\..*",
            prefix + "norm\\.(weight|bias)",
            prefix + "fc_norm\\.(weight|bias)",
            prefix + "attn_pool\\..*",
            prefix + "head\\.(weight|bias)",
        ]  # fmt: skip
    return out


def _template_regex(template: str) -> str:
    return re.escape(template).replace(re.escape("{i}"), r"(\d+)")


def compile_table(table: dict[str, tuple[str, str]]) -> list[tuple[re.Pattern, str, str, str]]:
    return [
        (re.compile(_template_regex(t) + "$"), t, path, transform) for t, (path, transform) in table.items()
    ]


def to_flax_layout(value: np.ndarray, transform: str) -> np.ndarray:
    if transform == "linear":
        return value.T
    if transform == "conv":
        return value.transpose(2, 3, 1, 0)
    return value


def torch_layout_shape(flax_shape: tuple[int, ...], transform: str) -> tuple[int, ...]:
    if transform == "linear":
        return flax_shape[::-1]
    if transform == "conv":
        kh, kw, i, o = flax_shape
        return (o, i, kh, kw)
    return flax_shape


def target_shapes(cfg: OpenVLAConfig) -> dict[str, jax.ShapeDtypeStruct]:
    """'/'-joined Flax path -> abstract leaf of the (LoRA-free) model."""
    from rl2vla_jax.models.openvla import OpenVLA

    size = cfg.image_size
    tree = jax.eval_shape(
        lambda r: OpenVLA(cfg).init(r, jnp.zeros((1, size, size, 6)), jnp.ones((1, 3), jnp.int32))["params"],
        jax.random.key(0),
    )
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(k.key for k in path): leaf for path, leaf in flat}


def unflatten(flat: dict[str, Any]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


@dataclasses.dataclass
class PlannedTensor:
    key: str
    shard: str
    shape: tuple[int, ...]
    dtype: str
    flax_path: str | None  # None = skipped (unused upstream)
    transform: str = "identity"
    layer: int | None = None


def plan_conversion(hf_dir: str, cfg: OpenVLAConfig) -> tuple[list[PlannedTensor], dict[str, Any]]:
    """Match every checkpoint key to the table; check shapes; find missing keys. No data read."""
    index = shard_index(hf_dir)
    shards: dict[str, SafetensorsFile] = {}
    for path in sorted(set(index.values())):
        if not os.path.exists(path):
            raise ConversionError(f"shard {path} named in model.safetensors.index.json does not exist")
        shards[path] = SafetensorsFile(path)
    rules = compile_table(param_table(cfg))
    ignored = [re.compile(p + "$") for p in ignored_key_patterns(cfg)]
    targets = target_shapes(cfg)
    filled: dict[str, set[int]] = {}
    plan = []
    for key, shard_path in index.items():
        shard = shards[shard_path]
        if key not in shard.header:
            raise ConversionError(f"key {key} is listed in the index for {shard_path} but not stored there")
        shape, dtype = shard.shape(key), shard.dtype(key)
        if any(p.match(key) for p in ignored):
            plan.append(PlannedTensor(key, shard_path, shape, dtype, None))
            continue
        found = next(((r.match(key), path, tf) for r, _, path, tf in rules if r.match(key)), None)
        if found is None:
            raise ConversionError(f"unexpected key {key} {list(shape)}: no conversion rule maps it")
        match, flax_path, transform = found
        target = targets[flax_path]
        layer = int(match.group(1)) if match.groups() else None
        expected = target.shape[1:] if layer is not None else target.shape
        if layer is not None and layer >= target.shape[0]:
            raise ConversionError(f"unexpected key {key}: layer {layer} but the config has {target.shape[0]}")
        expected_torch = torch_layout_shape(tuple(expected), transform)
        if shape != expected_torch:
            raise ConversionError(
                f"shape mismatch for {key}: checkpoint {list(shape)}, expected {list(expected_torch)} "
                f"(-> {flax_path} {list(target.shape)})"
            )
        filled.setdefault(flax_path, set()).add(layer if layer is not None else -1)
        plan.append(PlannedTensor(key, shard_path, shape, dtype, flax_path, transform, layer))
    for template, (flax_path, transform) in param_table(cfg).items():
        target = targets[flax_path]
        wanted = set(range(target.shape[0])) if "{i}" in template else {-1}
        for missing in sorted(wanted - filled.get(flax_path, set())):
            key = template.replace("{i}", str(missing))
            raise ConversionError(
                f"missing key {key}: expected {list(torch_layout_shape(tuple(target.shape[1:] if missing >= 0 else target.shape), transform))} "
                f"(-> {flax_path} {list(target.shape)})"
            )
    return plan, {"shards": shards, "targets": targets}


def load_params(hf_dir: str, cfg: OpenVLAConfig) -> dict:
    """Convert all tensors, one at a time, into preallocated numpy leaves (params dtype)."""
    plan, ctx = plan_conversion(hf_dir, cfg)
    dtype = np.dtype(ml_dtypes.bfloat16) if cfg.param_dtype == "bfloat16" else np.dtype(cfg.param_dtype)
    flat = {path: np.empty(leaf.shape, dtype) for path, leaf in ctx["targets"].items()}
    for item in plan:
        if item.flax_path is None:
            continue
        value = to_flax_layout(ctx["shards"][item.shard].get(item.key), item.transform)
        if item.layer is None:
            flat[item.flax_path][...] = value.astype(dtype)
        else:
            flat[item.flax_path][item.layer] = value.astype(dtype)
    return unflatten(flat)


def read_hf_config(hf_dir: str) -> dict[str, Any]:
    path = os.path.join(hf_dir, "config.json")
    if not os.path.exists(path):
        raise ConversionError(f"no config.json in {hf_dir}")
    with open(path) as f:
        return json.load(f)


def describe(plan: list[PlannedTensor]) -> str:
    lines = []
    for t in plan:
        target = "(unused upstream: skipped)" if t.flax_path is None else f"{t.flax_path} [{t.transform}]"
        layer = "" if t.layer is None else f" layer {t.layer}"
        lines.append(f"{t.key} {list(t.shape)} {t.dtype} -> {target}{layer}")
    return "\n".join(lines)
