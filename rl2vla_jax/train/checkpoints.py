"""Orbax checkpoints of a run, as separate items:

  params       {"policy": full OpenVLA params (base + LoRA), "critic": critic params}:
               loadable alone for inference
  train_state  optimizer moments, iteration, rng
  assets       JSON: model config, action statistics, tokenizer path, the run's config

Orbax writes each step into a temporary directory and renames it when complete, so a run
killed mid-save leaves the previous checkpoint intact and no half-written one.
"""

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from rl2vla_jax.train import state as state_lib


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


def load_policy_params(directory: str):
    """Policy params (and assets) of a run checkpoint directory or one of its steps, for
    `init_from` / evaluation: `<workdir>/checkpoints` (latest step) or `<...>/checkpoints/<step>`."""
    directory = os.path.abspath(directory)
    if os.path.isdir(os.path.join(directory, "params")):  # a single step
        step_dir = directory
    else:
        steps = [int(d) for d in os.listdir(directory) if d.isdigit()]
        if not steps:
            raise FileNotFoundError(f"{directory} holds no checkpoint (no params/ item, no numbered steps)")
        step_dir = os.path.join(directory, str(max(steps)))
    params = ocp.StandardCheckpointer().restore(os.path.join(step_dir, "params"))
    with open(os.path.join(step_dir, "assets", "metadata")) as f:  # JsonSave's file name
        assets = json.load(f)
    return params["policy"], assets
