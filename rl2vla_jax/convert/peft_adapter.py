"""PEFT LoRA adapters <-> rl2vla_jax LoRA factors (no torch needed).

PEFT file: adapter_config.json (r, lora_alpha, target_modules, ...) and
adapter_model.safetensors with `base_model.model.<module>.lora_A.weight` [r, in] and
`.lora_B.weight` [out, r]; in Flax, lora_a = A^T [in, r] and lora_b = B^T [r, out], stacked
over layers for scanned modules. Modules that OpenVLA's forward never uses (each tower's last
block, SigLIP's MAP head) are skipped on import and not written on export: with B = 0 in
PEFT's init for them, the adapted PyTorch model computes the same outputs.

The LM head is LoRA-able too: OpenVLA fine-tunes with peft 0.11.1 and target_modules="all-linear",
whose output-layer exclusion compares the full name "language_model.lm_head" with base names, so
`lm_head` gets LoRA factors. PEFT then also saves its base weight
(`...lm_head.base_layer.weight`, "save_embedding_layers"), which replaces the base weight when
PyTorch loads the adapter; import does the same.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from rl2vla_jax.convert.openvla_hf import (
    ConversionError,
    _template_regex,
    ignored_key_patterns,
    param_table,
    to_flax_layout,
    torch_layout_shape,
)
from rl2vla_jax.convert.safetensors_io import SafetensorsFile, save_numpy
from rl2vla_jax.models.config import LoraConfig, OpenVLAConfig
from rl2vla_jax.models.lora import LORA_A, LORA_B

PREFIX = "base_model.model."


def lora_module_table(cfg: OpenVLAConfig) -> dict[str, tuple[str, str]]:
    """{torch module template: (flax module path, "linear" | "conv")} for every LoRA-able layer:
    each Linear (lm_head included) and the towers' patch-embedding convs."""
    out = {}
    for template, (flax_path, transform) in param_table(cfg).items():
        if transform in ("linear", "conv") and template.endswith(".weight"):
            out[template[: -len(".weight")]] = (flax_path[: -len("/kernel")], transform)
    return out


def factor_to_flax(value: np.ndarray, which: str, transform: str) -> np.ndarray:
    """A PEFT factor -> our layout. Linear: A [r, in] -> [in, r], B [out, r] -> [r, out].
    Conv: A [r, in, kh, kw] -> [kh, kw, in, r]; B, a 1x1 conv [out, r, 1, 1] -> [r, out]."""
    if transform == "conv":
        return value.transpose(2, 3, 1, 0) if which == "lora_A" else value[:, :, 0, 0].T
    return value.T


def factor_to_torch(value: np.ndarray, which: str, transform: str) -> np.ndarray:
    if transform == "conv":
        return value.transpose(3, 2, 0, 1) if which == "lora_A" else value.T[:, :, None, None]
    return value.T


def _factor_shape(kernel_shape: tuple[int, ...], which: str, rank: int) -> tuple[int, ...]:
    """Our factor shape for one (unstacked) kernel: A = kernel[..., :-1] x r, B = [r, out]."""
    return (*kernel_shape[:-1], rank) if which == "lora_A" else (rank, kernel_shape[-1])


def _lookup(flat: dict[str, Any], path: str):
    node = flat
    for part in path.split("/"):
        node = node[part]
    return node


def import_adapter(adapter_dir: str, params: dict, cfg: OpenVLAConfig) -> tuple[dict, OpenVLAConfig]:
    """Add a PEFT adapter's factors to (base) params; returns (params, config with LoRA)."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    if adapter_config.get("use_rslora") or adapter_config.get("use_dora"):
        raise ConversionError("rsLoRA / DoRA adapters are not supported")
    rank, alpha = int(adapter_config["r"]), float(adapter_config["lora_alpha"])
    tensors = SafetensorsFile(os.path.join(adapter_dir, "adapter_model.safetensors"))
    modules = [(re.compile(_template_regex(t) + "$"), flax) for t, flax in lora_module_table(cfg).items()]
    ignored = [re.compile(p + "$") for p in ignored_key_patterns(cfg)]
    factors: dict[str, dict[str, np.ndarray]] = {}
    base_weights: dict[str, np.ndarray] = {}
    for key in tensors.keys():
        match = re.fullmatch(re.escape(PREFIX) + r"(.+)\.(lora_A|lora_B|base_layer)\.weight", key)
        if match is None:
            raise ConversionError(f"unexpected adapter key {key} {list(tensors.shape(key))}")
        module, which = match.groups()
        if any(p.match(module + ".weight") for p in ignored):
            continue
        found = next(((r.match(module), flax) for r, flax in modules if r.match(module)), None)
        if found is None:
            raise ConversionError(f"adapter key {key} targets no LoRA-able module of the model")
        m, (flax_module, transform) = found
        kernel = _lookup(params, flax_module + "/kernel")
        stacked = bool(m.groups())
        kernel_shape = kernel.shape[1:] if stacked else kernel.shape
        if which == "base_layer":  # a base weight saved with the adapter replaces the model's
            expected = torch_layout_shape(kernel.shape, transform)
            if stacked or tuple(tensors.shape(key)) != expected:
                raise ConversionError(
                    f"shape mismatch for {key}: adapter {list(tensors.shape(key))}, expected {list(expected)}"
                )
            base_weights[flax_module] = to_flax_layout(tensors.get(key), transform).astype(kernel.dtype)
            continue
        shape = _factor_shape(kernel_shape, which, rank)
        expected = factor_to_torch(np.empty(shape), which, transform).shape
        if tuple(tensors.shape(key)) != expected:
            raise ConversionError(
                f"shape mismatch for {key}: adapter {list(tensors.shape(key))}, expected {list(expected)} "
                f"(adapter_config.json has r={rank})"
            )
        name = LORA_A if which == "lora_A" else LORA_B
        full_shape = (kernel.shape[0], *shape) if stacked else shape
        slot = factors.setdefault(flax_module, {}).setdefault(name, np.zeros(full_shape, np.float32))
        value = factor_to_flax(tensors.get(key).astype(np.float32), which, transform)
        if stacked:
            slot[int(m.group(1))] = value
        else:
            slot[...] = value
    if not factors:
        raise ConversionError(f"the adapter in {adapter_dir} adapts no module of the model")
    params = _merge_factors(params, factors)
    for flax_module, value in base_weights.items():
        _lookup(params, flax_module)["kernel"] = value
    targets = tuple(sorted("^" + re.escape(m) + "$" for m in factors))
    return params, cfg.replace(lora=LoraConfig(rank=rank, alpha=alpha, targets=targets))


def _copy_tree(tree):
    """Fresh containers, shared leaves."""
    return {k: _copy_tree(v) for k, v in tree.items()} if isinstance(tree, dict) else tree


def _merge_factors(params: dict, factors: dict[str, dict[str, np.ndarray]]) -> dict:
    out = _copy_tree(params)
    for flax_module, pair in factors.items():
        if set(pair) != {LORA_A, LORA_B}:
            raise ConversionError(f"adapter has only {sorted(pair)} for {flax_module}")
        node = out
        for part in flax_module.split("/"):
            node = node[part]
        node.update(pair)
    return out


def export_adapter(
    params: dict, cfg: OpenVLAConfig, out_dir: str, base_model_name_or_path: str = "openvla/openvla-7b"
) -> None:
    """Write the LoRA factors in `params` as a PEFT adapter directory."""
    if cfg.lora is None:
        raise ValueError("the model config has no LoRA")
    tensors: dict[str, np.ndarray] = {}
    module_regexes = []
    for template, (flax_module, transform) in lora_module_table(cfg).items():
        try:
            node = _lookup(params, flax_module)
        except KeyError:
            continue
        if LORA_A not in node:
            continue
        module_regexes.append(_template_regex(template))
        lora_a, lora_b = np.asarray(node[LORA_A], np.float32), np.asarray(node[LORA_B], np.float32)
        layers = range(lora_a.shape[0]) if "{i}" in template else [None]
        for layer in layers:
            module = template.replace("{i}", str(layer))
            a = lora_a if layer is None else lora_a[layer]
            b = lora_b if layer is None else lora_b[layer]
            tensors[f"{PREFIX}{module}.lora_A.weight"] = np.ascontiguousarray(
                factor_to_torch(a, "lora_A", transform)
            )
            tensors[f"{PREFIX}{module}.lora_B.weight"] = np.ascontiguousarray(
                factor_to_torch(b, "lora_B", transform)
            )
    os.makedirs(out_dir, exist_ok=True)
    save_numpy(tensors, os.path.join(out_dir, "adapter_model.safetensors"), metadata={"format": "pt"})
    adapter_config = {
        "peft_type": "LORA",
        "base_model_name_or_path": base_model_name_or_path,
        "r": cfg.lora.rank,
        "lora_alpha": cfg.lora.alpha,
        "lora_dropout": 0.0,
        "target_modules": "(" + "|".join(module_regexes) + ")",
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": "gaussian",
        "inference_mode": True,
        "modules_to_save": None,
        "task_type": None,
        "use_rslora": False,
        "use_dora": False,
    }
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2)
