"""The training state: trainable (LoRA) and frozen policy params kept apart, so gradients and
optimizer moments exist only for what trains; a critic with its own optimizer."""

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from rl2vla_jax.models.trainable import FlatParams, Params, merge


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
