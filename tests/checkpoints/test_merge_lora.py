"""`python -m rl2vla_jax.merge_lora`: the merged checkpoint (no LoRA) scores actions as the
adapted one did, and a run that starts from it gets a fresh adapter (RL4VLA's warm-up -> SFT)."""

import os
import subprocess
import sys

import jax
import numpy as np

from rl2vla_jax import checkpoints
from rl2vla_jax.data import prompt
from rl2vla_jax.models import config as config_lib
from rl2vla_jax.models import init as model_init
from rl2vla_jax.models import lora as lora_lib
from rl2vla_jax.policy import sampling

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _adapted_checkpoint(path):
    cfg = config_lib.tiny()
    params = model_init.init_params(cfg, jax.random.key(0))
    rng = np.random.default_rng(1)  # B = 0 at init would make the merge a no-op

    def draw(path, leaf):
        if getattr(path[-1], "key", None) == lora_lib.LORA_B:
            return rng.normal(0.0, 0.3, leaf.shape).astype(np.float32)
        return leaf

    params = jax.tree_util.tree_map_with_path(draw, params)
    stats = {"action": {"q01": [-1.0] * 7, "q99": [1.0] * 7}}
    assets = checkpoints.make_assets(
        cfg, {"bridge_orig": stats}, prompt.tiny_tokenizer(), env={"camera": "close"}
    )
    checkpoints.write_converted(path, params, assets)
    return cfg, params


def _merge(checkpoint, out):
    return subprocess.run(
        [sys.executable, "-m", "rl2vla_jax.merge_lora", f"--checkpoint={checkpoint}", f"--out={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_merged_and_unmerged_logits_agree(tmp_path):
    cfg, params = _adapted_checkpoint(str(tmp_path / "adapted"))
    result = _merge(tmp_path / "adapted", tmp_path / "merged")
    assert result.returncode == 0, result.stderr[-3000:]
    merged, merged_cfg, assets = checkpoints.load_policy(str(tmp_path / "merged"))
    assert merged_cfg.lora is None and merged_cfg == cfg.replace(lora=None)
    assert any(jax.tree.leaves(lora_lib.lora_mask(params)))
    assert not any(jax.tree.leaves(lora_lib.lora_mask(merged)))
    assert assets["norm_stats"]["bridge_orig"]["action"]["q99"] == [1.0] * 7 and assets["env"] == {
        "camera": "close"
    }
    assert open(assets["tokenizer"], "rb").read() == open(prompt.tiny_tokenizer(), "rb").read()

    rng = np.random.default_rng(3)
    pixels = rng.normal(size=(2, cfg.image_size, cfg.image_size, 6)).astype(np.float32)
    tokenizer = prompt.load_tokenizer(prompt.tiny_tokenizer())
    ids, mask = prompt.encode_prompts(
        tokenizer, ["push the cup", "put the carrot on the plate"], vocab_size=448
    )
    tokens = rng.integers(0, 256, (2, 7))
    score = jax.jit(sampling.action_logits_and_hidden, static_argnums=1)
    adapted_logits, _ = score(params, cfg, pixels, ids, mask, tokens)
    merged_logits, _ = score(merged, merged_cfg, pixels, ids, mask, tokens)
    base_logits, _ = score(lora_lib.strip_lora(params), merged_cfg, pixels, ids, mask, tokens)
    # float32: x(W + sAB) vs xW + s(xA)B differ by reassociation only (|logits| ~ 3, max gap ~1e-4).
    np.testing.assert_allclose(merged_logits, adapted_logits, atol=2e-4, rtol=1e-5)
    assert np.abs(np.asarray(base_logits) - np.asarray(adapted_logits)).max() > 0.1  # the LoRA mattered

    # A run starting from the merged checkpoint adds a fresh adapter (B = 0: still the merged model).
    fresh, _ = checkpoints.with_lora(merged, cfg, "", jax.random.key(4))
    fresh_logits, _ = score(fresh, cfg, pixels, ids, mask, tokens)
    np.testing.assert_allclose(fresh_logits, merged_logits, atol=5e-5, rtol=1e-5)


def test_a_checkpoint_without_lora_is_one_error_line(tmp_path):
    cfg = config_lib.tiny(lora=None)
    params = model_init.init_params(cfg, jax.random.key(0))
    checkpoints.write_converted(str(tmp_path / "plain"), params, checkpoints.make_assets(cfg, {}, None))
    result = _merge(tmp_path / "plain", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith(
        "has no LoRA factors to merge"
    )
    assert not os.path.exists(tmp_path / "out")
