"""rl2vla_jax model checkpoints: orbax `params` + an `assets` folder, written atomically.

Layout of DIR:  params/ (orbax, loadable alone)   assets/model_config.json, norm_stats.json,
hf_config.json, tokenizer.model (+ other tokenizer files found next to the HF weights).
Everything is written to a sibling temp dir first and renamed into place, so a failed
conversion leaves nothing at DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from rl2vla_jax.models.config import OpenVLAConfig

TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def write_checkpoint(
    out_dir: str,
    params: dict,
    model_config: OpenVLAConfig,
    norm_stats: dict | None = None,
    hf_config: dict | None = None,
    tokenizer_dir: str | None = None,
) -> None:
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir):
        raise FileExistsError(f"{out_dir} already exists")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".tmp-", dir=parent)
    try:
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(os.path.join(tmp, "params"), params)
        checkpointer.wait_until_finished()
        assets = os.path.join(tmp, "assets")
        os.makedirs(assets)
        with open(os.path.join(assets, "model_config.json"), "w") as f:
            f.write(model_config.to_json())
        with open(os.path.join(assets, "norm_stats.json"), "w") as f:
            json.dump(norm_stats or {}, f, indent=2)
        if hf_config is not None:
            with open(os.path.join(assets, "hf_config.json"), "w") as f:
                json.dump(hf_config, f, indent=2)
        for name in TOKENIZER_FILES if tokenizer_dir else ():
            if os.path.exists(os.path.join(tokenizer_dir, name)):
                shutil.copy(os.path.join(tokenizer_dir, name), os.path.join(assets, name))
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_checkpoint(ckpt_dir: str, as_jax: bool = True) -> tuple[dict, OpenVLAConfig, dict[str, Any]]:
    """(params, model_config, assets) with assets = {norm_stats, tokenizer (path or None), dir}."""
    ckpt_dir = os.path.abspath(ckpt_dir)
    assets_dir = os.path.join(ckpt_dir, "assets")
    with open(os.path.join(assets_dir, "model_config.json")) as f:
        model_config = OpenVLAConfig.from_dict(json.load(f))
    params = ocp.StandardCheckpointer().restore(os.path.join(ckpt_dir, "params"))
    if as_jax:
        params = jax.tree_util.tree_map(jnp.asarray, params)
    else:
        params = jax.tree_util.tree_map(np.asarray, params)
    with open(os.path.join(assets_dir, "norm_stats.json")) as f:
        norm_stats = json.load(f)
    tokenizer = os.path.join(assets_dir, "tokenizer.model")
    assets = {
        "dir": assets_dir,
        "norm_stats": norm_stats,
        "tokenizer": tokenizer if os.path.exists(tokenizer) else None,
    }
    return params, model_config, assets
