"""Converter behaviour: errors, inspect mode, PEFT export/import round trip."""

import copy
import json
import os
import shutil

import jax
import numpy as np
import pytest
from conftest import run_cli

from rl2vla_jax.checkpoints import load_policy
from rl2vla_jax.convert import peft_adapter
from rl2vla_jax.convert.safetensors_io import SafetensorsFile, save_numpy

pytestmark = pytest.mark.torch


def rewrite_shard_tensor(hf_dir, old_key, new_key=None, new_value=None):
    """Rename or replace one tensor in its shard (and the index), like a broken upload would."""
    index_path = os.path.join(hf_dir, "model.safetensors.index.json")
    with open(index_path) as f:
        index = json.load(f)
    shard_name = index["weight_map"][old_key]
    shard = SafetensorsFile(os.path.join(hf_dir, shard_name))
    tensors = {k: shard.get(k) for k in shard.keys()}
    value = tensors.pop(old_key)
    key = new_key or old_key
    tensors[key] = value if new_value is None else new_value
    del shard
    save_numpy(tensors, os.path.join(hf_dir, shard_name))
    del index["weight_map"][old_key]
    index["weight_map"][key] = shard_name
    with open(index_path, "w") as f:
        json.dump(index, f)


def run_broken(tiny_reference, tmp_path, mutate):
    hf_dir = str(tmp_path / "hf")
    shutil.copytree(tiny_reference.hf_dir, hf_dir)
    mutate(hf_dir)
    out = tmp_path / "out"
    result = run_cli("rl2vla_jax.convert_openvla", f"--hf_dir={hf_dir}", f"--out={out}", "--dtype=float32")
    errors = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert not out.exists() and not any(p.name.startswith("out.tmp") for p in tmp_path.iterdir())
    return errors[0]


def test_truncated_shard(tiny_reference, tmp_path):
    def truncate(hf_dir):
        path = os.path.join(hf_dir, "model-00002-of-00003.safetensors")
        os.truncate(path, os.path.getsize(path) - 100)

    line = run_broken(tiny_reference, tmp_path, truncate)
    assert "truncated shard" in line and "model-00002-of-00003.safetensors" in line


def test_renamed_key(tiny_reference, tmp_path):
    old = "language_model.model.layers.1.mlp.up_proj.weight"
    new = "language_model.model.layers.1.mlp.upper_proj.weight"
    line = run_broken(tiny_reference, tmp_path, lambda d: rewrite_shard_tensor(d, old, new_key=new))
    assert "unexpected key " + new + " [68, 40]" in line


def test_wrong_shape(tiny_reference, tmp_path):
    key = "projector.fc2.weight"
    bad = np.zeros((40, 175), np.float32)
    line = run_broken(tiny_reference, tmp_path, lambda d: rewrite_shard_tensor(d, key, new_value=bad))
    assert f"shape mismatch for {key}: checkpoint [40, 175], expected [40, 176]" in line


def test_missing_key(tiny_reference, tmp_path):
    def drop(hf_dir):
        old, new = (f"vision_backbone.featurizer.blocks.{i}.ls2.scale_factor" for i in (1, 2))
        rewrite_shard_tensor(hf_dir, old, new_key=new)

    line = run_broken(tiny_reference, tmp_path, drop)
    # blocks.2 is the unused last block (skipped), so blocks.1 is now missing.
    assert "missing key vision_backbone.featurizer.blocks.1.ls2.scale_factor: expected [24]" in line


def test_inspect_only_lists_every_key(tiny_reference):
    result = run_cli("rl2vla_jax.convert_openvla", f"--hf_dir={tiny_reference.hf_dir}", "--inspect_only")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(
        "projector.fc1.weight [176, 44]" in line and "projector/fc1/kernel [linear]" in line for line in lines
    )
    assert any("attn_pool.latent" in line and "skipped" in line for line in lines)
    assert '"vocab_size": 448' in result.stdout


def test_peft_export_import_round_trip(tiny_reference, converted, converted_lora, tmp_path):
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    lora_params, cfg, _ = load_policy(converted_lora)
    exported = str(tmp_path / "exported")
    peft_adapter.export_adapter(lora_params, cfg, exported)
    base_params, base_cfg, _ = load_policy(converted)
    reimported, cfg2 = peft_adapter.import_adapter(exported, base_params, base_cfg)
    assert (cfg2.lora.rank, cfg2.lora.alpha) == (cfg.lora.rank, cfg.lora.alpha)
    flat_a = jax.tree_util.tree_flatten_with_path(lora_params)[0]
    flat_b = dict(jax.tree_util.tree_flatten_with_path(reimported)[0])
    assert len(flat_a) == len(flat_b)
    for path, value in flat_a:
        np.testing.assert_array_equal(value, flat_b[path])
    # PyTorch users can load what we export: same logits as the original PEFT model.
    loaded = peft.PeftModel.from_pretrained(copy.deepcopy(tiny_reference.model), exported).eval()
    pixels = torch.randn(1, 6, 28, 28, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[1, 280, 350, 287, 290, 291, 261, 289, 288, 264, 341]])
    with torch.no_grad():
        np.testing.assert_allclose(
            loaded(pixels, ids).numpy(), tiny_reference.peft_model(pixels, ids).numpy(), atol=1e-5
        )


def test_config_reading_uses_llama_and_timm_defaults():
    from rl2vla_jax.convert.openvla_hf import model_config_from_hf
    from rl2vla_jax.models import config as config_lib

    # The real openvla-7b config.json lists only these text_config fields.
    real_like = {
        "timm_model_ids": ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"],
        "image_sizes": [224, 224],
        "text_config": {
            "model_type": "llama",
            "pad_token_id": 32000,
            "torch_dtype": "bfloat16",
            "vocab_size": 32064,
        },
        "pad_to_multiple_of": 64,
        "n_action_bins": 256,
    }
    cfg = model_config_from_hf(real_like, "bfloat16")
    expected = config_lib.openvla_7b(lora=None, remat_policy=None)
    assert cfg == expected
    assert (cfg.action_token_begin, cfg.action_token_end, cfg.llm.rms_norm_eps) == (31744, 32000, 1e-6)
    new_style = {**real_like, "text_config": {"vocab_size": 32064, "dtype": "bfloat16", "rms_norm_eps": 1e-5,
                                              "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}}}  # fmt: skip
    cfg = model_config_from_hf(new_style)
    assert (cfg.llm.rope_theta, cfg.llm.rms_norm_eps) == (500000.0, 1e-5)
    cfg = model_config_from_hf({**real_like, "text_config": {"rope_theta": 1234.0, "num_key_value_heads": 8}})
    assert (cfg.llm.rope_theta, cfg.llm.num_kv_heads, cfg.llm.vocab_size) == (1234.0, 8, 32000)


def test_bfloat16_checkpoint_converts_exactly(tiny_reference, tmp_path):
    torch = pytest.importorskip("torch")
    from rl2vla_jax.convert import torch_reference as ref
    from rl2vla_jax.policy import sampling

    model = copy.deepcopy(tiny_reference.model).to(torch.bfloat16)
    hf_config = copy.deepcopy(tiny_reference.hf_config)
    hf_config["text_config"]["torch_dtype"] = hf_config["torch_dtype"] = "bfloat16"
    hf_dir = str(tmp_path / "hf_bf16")
    ref.save_hf_checkpoint(model, hf_config, hf_dir, num_shards=2, tokenizer=tiny_reference.tokenizer_path)
    out = str(tmp_path / "jax_bf16")
    result = run_cli("rl2vla_jax.convert_openvla", f"--hf_dir={hf_dir}", f"--out={out}", "--dtype=bfloat16")
    assert result.returncode == 0, result.stderr[-2000:]
    params, cfg, assets = load_policy(out)
    assert cfg.param_dtype == "bfloat16" and assets["tokenizer"] is not None
    state = model.state_dict()
    kernel = params["llm"]["layers"]["self_attn"]["k_proj"]["kernel"]
    assert kernel.dtype == np.dtype("bfloat16")
    np.testing.assert_array_equal(
        np.asarray(kernel[2], np.float32),
        state["language_model.model.layers.2.self_attn.k_proj.weight"].float().numpy().T,
    )
    conv = params["vision"]["siglip"]["patch_embed"]["kernel"]
    np.testing.assert_array_equal(
        np.asarray(conv, np.float32),
        state["vision_backbone.fused_featurizer.patch_embed.proj.weight"]
        .float()
        .numpy()
        .transpose(2, 3, 1, 0),
    )
    pixels = np.random.default_rng(0).normal(size=(2, 28, 28, 6)).astype(np.float32)
    ids = np.array([[1, 280, 350, 287, 290], [1, 280, 350, 0, 0]], np.int32)
    out = sampling.sample_actions(params, cfg, pixels, ids, ids > 0, jax.random.key(0), 1.0)
    assert out["tokens"].shape == (2, 7) and np.isfinite(np.asarray(out["log_probs"])).all()
