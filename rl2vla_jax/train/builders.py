"""From a validated config to the objects a run needs: model config, params, critic, optimizers."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections

from rl2vla_jax.models import config as model_config_lib
from rl2vla_jax.models import critics
from rl2vla_jax.rl import policy as policy_lib
from rl2vla_jax.train import state as state_lib
from rl2vla_jax.train.hparams import RLHparams


def run_lora(config: ml_collections.ConfigDict) -> model_config_lib.LoraConfig:
    return model_config_lib.LoraConfig(
        rank=int(config.lora.rank), alpha=float(config.lora.alpha), targets=tuple(config.lora.targets)
    )


def adapter_lora(config) -> model_config_lib.LoraConfig | None:
    """The LoRA shape of a PEFT `config.adapter` (its rank and alpha), if one is given."""
    if not config.adapter:
        return None
    with open(os.path.join(config.adapter, "adapter_config.json")) as f:
        adapter = json.load(f)
    return model_config_lib.LoraConfig(
        int(adapter["r"]), float(adapter["lora_alpha"]), tuple(config.lora.targets)
    )


def model_config(config: ml_collections.ConfigDict, checkpoint_config=None) -> model_config_lib.OpenVLAConfig:
    """The run's model: the sizes of the `init_from` checkpoint (`checkpoint_config`) or of
    `config.model.preset`, with the run's dtype and remat. LoRA: the checkpoint's own adapter
    if it has one (an SFT checkpoint continues training it), else the run's."""
    remat = None if config.model.remat == "none" else config.model.remat
    dtypes = {"param_dtype": config.model.param_dtype, "compute_dtype": config.model.param_dtype}
    if checkpoint_config is not None:
        lora = adapter_lora(config) or checkpoint_config.lora or run_lora(config)
        return checkpoint_config.replace(remat_policy=remat, lora=lora, **dtypes)
    return model_config_lib.get_preset(
        config.model.preset, remat_policy=remat, lora=run_lora(config), **dtypes
    )


def with_run_lora(config, params, model_cfg):
    """Params of a checkpoint with LoRA factors: its own, a PEFT `config.adapter`, or fresh ones."""
    if config.adapter:
        from rl2vla_jax.convert.peft_adapter import import_adapter

        return import_adapter(config.adapter, params, model_cfg.replace(lora=None))
    return policy_lib.add_lora(
        params, model_cfg.replace(lora=None), model_cfg.lora, jax.random.PRNGKey(config.seed)
    )


def make_critic(hp: RLHparams, config: ml_collections.ConfigDict):
    return critics.make_critic(
        hp.critic, tuple(config.critic.hidden_sizes), int(config.critic.film_hidden_size)
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
        policy_params = policy_lib.init_params(model_cfg, policy_rng)
    trainable, frozen = state_lib.split_trainable(policy_params, config.trainable)
    critic_params = init_critic_params(critic, model_cfg.llm.hidden_size, critic_rng, hp.uses_critic)
    actor_tx, critic_tx = optimizers(config)
    return state_lib.create(trainable, frozen, critic_params, actor_tx, critic_tx, state_rng)


def optimizers(config):
    return state_lib.make_optimizers(config.optim.actor_lr, config.optim.critic_lr, config.optim.weight_decay)
