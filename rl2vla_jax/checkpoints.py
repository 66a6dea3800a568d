"""Orbax checkpoints of a run, as separate items:

  params       {"policy": full OpenVLA params (base + LoRA), "critic": critic params}:
               loadable alone for inference
  train_state  optimizer moments, iteration, rng
  assets       JSON: model config, norm stats, tokenizer path, the run's config

Orbax writes each step into a temporary directory and renames it when complete, so a run
killed mid-save leaves the previous checkpoint intact and no half-written one.
"""

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
from rl2vla_jax.models.trainable import split_trainable

ASSETS_FILE = "metadata"  # the file orbax's JsonSave writes inside the `assets` item


def manager(directory: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(
        os.path.abspath(directory), item_names=("params", "train_state", "assets"), options=options
    )


def _train_state_item(state) -> dict[str, Any]:
    return {
        "iteration": state.iteration,
        "actor_opt_state": state.actor_opt_state,
        "critic_opt_state": state.critic_opt_state,
        "rng": state.rng,
    }


def save(mgr: ocp.CheckpointManager, state, assets: dict[str, Any]) -> None:
    step = int(jax.device_get(state.iteration))
    mgr.save(
        step,
        args=ocp.args.Composite(
            params=ocp.args.StandardSave({"policy": state.policy_params, "critic": state.critic}),
            train_state=ocp.args.StandardSave(_train_state_item(state)),
            assets=ocp.args.JsonSave(assets),
        ),
    )
    mgr.wait_until_finished()


def restore(mgr: ocp.CheckpointManager, template, trainable_patterns) -> tuple:
    """The latest step as a TrainState shaped (and sharded) like `template`, plus its assets."""
    step = mgr.latest_step()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    restored = mgr.restore(
        step,
        args=ocp.args.Composite(
            params=ocp.args.StandardRestore({"policy": abstract.policy_params, "critic": abstract.critic}),
            train_state=ocp.args.StandardRestore(_train_state_item(abstract)),
            assets=ocp.args.JsonRestore(),
        ),
    )
    trainable, frozen = split_trainable(restored.params["policy"], trainable_patterns)
    item = restored.train_state
    state = template.replace(
        iteration=item["iteration"],
        trainable=trainable,
        frozen=frozen,
        critic=restored.params["critic"],
        actor_opt_state=item["actor_opt_state"],
        critic_opt_state=item["critic_opt_state"],
        rng=item["rng"],
    )
    return state, restored.assets


def load_policy(directory: str) -> tuple[Any, OpenVLAConfig, dict[str, Any]]:
    """(policy params, model config, assets) from any checkpoint this project writes:
    a model checkpoint (converter / SFT output: `params/` + `assets/model_config.json`), a run's
    `checkpoints/` folder (its latest step), a run directory, or one step of it.
    assets = {"norm_stats": {key: {"action": ...}}, "tokenizer": tokenizer.model path or None}.
    """
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    if os.path.isfile(os.path.join(directory, "assets", "model_config.json")):
        params, model_config, assets = load_checkpoint(directory)
        return params, model_config, {"norm_stats": assets["norm_stats"], "tokenizer": assets["tokenizer"]}
    if os.path.isdir(os.path.join(directory, "checkpoints")):
        directory = os.path.join(directory, "checkpoints")
    step_dir = directory
    if not os.path.isdir(os.path.join(directory, "params")):
        steps = [int(d) for d in os.listdir(directory) if d.isdigit()]
        if not steps:
            raise FileNotFoundError(
                f"{directory} holds no checkpoint (no params/ item and no numbered steps)"
            )
        step_dir = os.path.join(directory, str(max(steps)))
        if os.path.isfile(os.path.join(step_dir, "assets", "model_config.json")):  # an SFT run's step
            return load_policy(step_dir)
    params = ocp.StandardCheckpointer().restore(os.path.join(step_dir, "params"))
    with open(os.path.join(step_dir, "assets", ASSETS_FILE)) as f:
        assets = json.load(f)
    model_config = OpenVLAConfig.from_dict(assets["model_config"])
    return (
        params["policy"],
        model_config,
        {"norm_stats": assets["norm_stats"], "tokenizer": assets["tokenizer"]},
    )


def load_model_config(directory: str) -> OpenVLAConfig | None:
    """The model config of an `init_from` checkpoint (None for an empty path), without its params."""
    if not directory:
        return None
    directory = os.path.abspath(directory)
    path = os.path.join(directory, "assets", "model_config.json")
    if os.path.isfile(path):
        with open(path) as f:
            return OpenVLAConfig.from_dict(json.load(f))
    _, model_config, _ = load_policy(directory)
    return model_config


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


def with_lora(params, model_cfg, adapter_dir: str | None, rng: jax.Array):
    """Params of a checkpoint with LoRA factors: a PEFT adapter's (`adapter_dir`), or fresh ones
    of `model_cfg.lora` (factors already present are kept)."""
    if adapter_dir:
        from rl2vla_jax.convert.peft_adapter import import_adapter  # PEFT files: the converter's job

        return import_adapter(adapter_dir, params, model_cfg.replace(lora=None))
    from rl2vla_jax.models.init import add_lora

    return add_lora(params, model_cfg.replace(lora=None), model_cfg.lora, rng)
