"""From a validated config to the objects an RL run needs: critic, optimizers, initial state.
(The model config comes from `rl2vla_jax.policy.loading.model_config`.)"""

import jax
import jax.numpy as jnp
import ml_collections

from rl2vla_jax.models import critics
from rl2vla_jax.models.init import init_params, param_shapes
from rl2vla_jax.models.trainable import split_trainable
from rl2vla_jax.policy import loading
from rl2vla_jax.train import state as state_lib
from rl2vla_jax.train.hparams import RLHparams


def make_critic(hp: RLHparams, config: ml_collections.ConfigDict):
    return critics.make_critic(
        hp.critic,
        tuple(config.critic.hidden_sizes),
        int(config.critic.film_hidden_size),
        bool(config.critic.rl4vla_head),
    )


def init_critic_params(critic, hidden_size: int, rng: jax.Array, uses_critic: bool):
    if not uses_critic:
        return {}
    return critic.init(rng, jnp.zeros((1, hidden_size), jnp.float32), jnp.zeros((1,), jnp.float32))["params"]


def initial_state(config, hp: RLHparams, model_cfg, critic, policy_params=None) -> state_lib.TrainState:
    """A fresh TrainState: given policy params (a converted / SFT checkpoint) or a random init."""
    rng = jax.random.PRNGKey(config.seed)
    policy_rng, critic_rng, state_rng = jax.random.split(rng, 3)
    if policy_params is None:
        policy_params = init_params(model_cfg, policy_rng, **loading.random_init_options(config))
    trainable, frozen = split_trainable(policy_params, config.trainable)
    critic_params = init_critic_params(critic, model_cfg.llm.hidden_size, critic_rng, hp.uses_critic)
    actor_tx, critic_tx = optimizers(config)
    return state_lib.create(trainable, frozen, critic_params, actor_tx, critic_tx, state_rng)


def optimizers(config):
    return state_lib.make_optimizers(config.optim.actor_lr, config.optim.critic_lr, config.optim.weight_decay)


def abstract_state(config, hp: RLHparams, model_cfg, critic) -> state_lib.TrainState:
    """`initial_state`'s shapes and dtypes, nothing computed: the template a checkpoint is
    restored into (at 7B a random init only to learn shapes would draw 7.5e9 normals)."""

    def build(policy_params, rng):
        trainable, frozen = split_trainable(policy_params, config.trainable)
        critic_params = init_critic_params(critic, model_cfg.llm.hidden_size, rng, hp.uses_critic)
        actor_tx, critic_tx = optimizers(config)
        return state_lib.create(trainable, frozen, critic_params, actor_tx, critic_tx, rng)

    return jax.eval_shape(build, param_shapes(model_cfg), jax.random.PRNGKey(config.seed))


def checkpoint_items(state: state_lib.TrainState) -> tuple[dict, dict]:
    """A TrainState as the checkpoint's `params` and `train_state` items."""
    params = {"policy": state.policy_params} | ({"critic": state.critic} if state.critic else {})
    train_state = {
        "iteration": state.iteration,
        "actor_opt_state": state.actor_opt_state,
        "critic_opt_state": state.critic_opt_state,
        "rng": state.rng,
    }
    return params, train_state


def from_checkpoint_items(params: dict, train_state: dict, trainable_patterns) -> state_lib.TrainState:
    trainable, frozen = split_trainable(params["policy"], trainable_patterns)
    return state_lib.TrainState(
        trainable=trainable, frozen=frozen, critic=params.get("critic", {}), **train_state
    )
