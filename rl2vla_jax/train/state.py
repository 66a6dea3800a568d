"""The training state: trainable (LoRA) and frozen policy params kept apart, so gradients and
optimizer moments exist only for what trains; a critic with its own optimizer."""

import re
from collections.abc import Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax import struct

Params = Any
FlatParams = dict[str, jax.Array]  # '/'-joined path -> array


def flatten(params: Params) -> FlatParams:
    return {"/".join(path): leaf for path, leaf in flax.traverse_util.flatten_dict(params).items()}


def unflatten(flat: FlatParams) -> Params:
    return flax.traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})


def split_trainable(params: Params, patterns: Sequence[str]) -> tuple[FlatParams, FlatParams]:
    """(trainable, frozen) by regexes over '/'-joined paths (config.trainable)."""
    compiled = [re.compile(p) for p in patterns]
    flat = flatten(params)
    trainable = {k: v for k, v in flat.items() if any(c.search(k) for c in compiled)}
    if not trainable:
        raise ValueError(f"no parameter matches the trainable patterns {list(patterns)}")
    frozen = {k: v for k, v in flat.items() if k not in trainable}
    return trainable, frozen


def merge(trainable: FlatParams, frozen: FlatParams) -> Params:
    return unflatten({**frozen, **trainable})


@struct.dataclass
class TrainState:
    iteration: jax.Array  # completed RL iterations
    trainable: FlatParams  # LoRA factors: the actor's optimised params
    frozen: FlatParams  # base weights, never differentiated
    critic: Params  # {} when the algorithm has no critic
    actor_opt_state: Any
    critic_opt_state: Any
    rng: jax.Array

    @property
    def policy_params(self) -> Params:
        return merge(self.trainable, self.frozen)


def make_optimizers(actor_lr: float, critic_lr: float, weight_decay: float):
    """AdamW for the LoRA params and for the critic (RL4VLA: constant lr, wd 0.01).
    The global grad-norm clip spans both and is applied before them (see update.py)."""
    return optax.adamw(actor_lr, weight_decay=weight_decay), optax.adamw(critic_lr, weight_decay=weight_decay)


def create(trainable, frozen, critic, actor_tx, critic_tx, rng) -> TrainState:
    return TrainState(
        iteration=jnp.zeros((), jnp.int32),
        trainable=trainable,
        frozen=frozen,
        critic=critic,
        actor_opt_state=actor_tx.init(trainable),
        critic_opt_state=critic_tx.init(critic),
        rng=rng,
    )
