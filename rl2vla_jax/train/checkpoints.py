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
from typing import Any

import jax
import orbax.checkpoint as ocp

from rl2vla_jax.convert.checkpoint import load_checkpoint
from rl2vla_jax.models.config import OpenVLAConfig
from rl2vla_jax.train import state as state_lib

ASSETS_FILE = "metadata"  # the file orbax's JsonSave writes inside the `assets` item


def manager(directory: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(
        os.path.abspath(directory), item_names=("params", "train_state", "assets"), options=options
    )


def _train_state_item(state: state_lib.TrainState) -> dict[str, Any]:
    return {
        "iteration": state.iteration,
        "actor_opt_state": state.actor_opt_state,
        "critic_opt_state": state.critic_opt_state,
        "rng": state.rng,
    }


def save(mgr: ocp.CheckpointManager, state: state_lib.TrainState, assets: dict[str, Any]) -> None:
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


def restore(mgr: ocp.CheckpointManager, template: state_lib.TrainState, trainable_patterns) -> tuple:
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
    trainable, frozen = state_lib.split_trainable(restored.params["policy"], trainable_patterns)
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
