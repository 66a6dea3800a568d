"""A checkpoint (or a random init) -> everything needed to act: params, model config, action
decoder, tokenizer. Used by evaluation, predict_action and as the trainers' starting point."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax

from rl2vla_jax import checkpoints
from rl2vla_jax.data.norm_stats import select_stats
from rl2vla_jax.data.prompt import load_tokenizer, tiny_tokenizer
from rl2vla_jax.models import config as model_config_lib
from rl2vla_jax.models import critics
from rl2vla_jax.models.init import init_params
from rl2vla_jax.policy.actions import ActionDecoder
from rl2vla_jax.validation import ConfigError

RANDOM = "random"  # --checkpoint=random: the untrained policy of config.model.preset


def run_lora(config) -> model_config_lib.LoraConfig:
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


def model_config(config, checkpoint_config=None) -> model_config_lib.OpenVLAConfig:
    """The run's model: the sizes of the `init_from` checkpoint (`checkpoint_config`) or of
    `config.model.preset`, with the run's dtype and remat. LoRA: the checkpoint's own adapter
    if it has one (an SFT checkpoint continues training it), else the run's."""
    remat = None if config.model.remat == "none" else config.model.remat
    # How the layers run (dtype, remat, unrolling) is the run's choice, not the checkpoint's.
    run_options = {
        "param_dtype": config.model.param_dtype,
        "compute_dtype": config.model.param_dtype,
        "remat_policy": remat,
        "scan_unroll": config.model.get("scan_unroll", 1),
    }
    if checkpoint_config is not None:
        lora = adapter_lora(config) or checkpoint_config.lora or run_lora(config)
        return checkpoint_config.replace(lora=lora, **run_options)
    return model_config_lib.get_preset(config.model.preset, lora=run_lora(config), **run_options)


@dataclasses.dataclass
class LoadedPolicy:
    params: Any
    model_config: model_config_lib.OpenVLAConfig
    decoder: ActionDecoder
    tokenizer: Any
    description: str
    critic: LoadedCritic | None = None  # an RL checkpoint's critic, when it has one


@dataclasses.dataclass
class LoadedCritic:
    """The critic of an RL checkpoint, rebuilt from the run's config stored in its assets."""

    module: Any
    params: Any
    descriptor_mode: str
    descriptor_tokens: str
    gamma: float
    gae_lambda: float


def critic_from(params: dict, assets: dict) -> LoadedCritic | None:
    """None unless the checkpoint holds critic params and the run config that built them."""
    run_config = json.loads(assets["config"]) if assets.get("config") else {}
    section = run_config.get("critic")
    if not params.get("critic") or not section:
        return None
    module = critics.make_critic(
        section["name"], tuple(section["hidden_sizes"]), int(section.get("film_hidden_size", 64))
    )
    ppo = run_config.get("ppo", {})
    return LoadedCritic(
        module,
        params["critic"],
        section.get("descriptor_mode", "mean"),
        section.get("descriptor_tokens", "all"),  # checkpoints from before the key: all 7
        float(ppo.get("gamma", 0.99)),
        float(ppo.get("gae_lambda", 0.95)),
    )


def random_init_options(config) -> dict:
    """`models.init.init_params`' options from the config's model section."""
    return {
        "position_std": float(config.model.get("init_position_std", 0.02)),
        "layer_scale": float(config.model.get("init_layer_scale", 1e-5)),
    }


def load(config, checkpoint: str, random_action_stats: dict | None = None) -> LoadedPolicy:
    """A policy to act with: `checkpoint` is RANDOM (config.model.preset, seed config.seed,
    acting with `random_action_stats`, e.g. the env's full action range) or a checkpoint."""
    if checkpoint == RANDOM:
        if random_action_stats is None:
            raise ValueError("a random policy needs action statistics (random_action_stats)")
        model_cfg = model_config(config)
        params = init_params(model_cfg, jax.random.PRNGKey(config.seed), **random_init_options(config))
        action_stats, tokenizer_path = random_action_stats, tiny_tokenizer()
        critic = None
        description = f"untrained {config.model.preset} (seed {config.seed})"
    else:
        all_params, model_cfg, assets = checkpoints.load_params(checkpoint)
        params, critic = all_params["policy"], critic_from(all_params, assets)
        if not assets.get("norm_stats"):
            raise ConfigError(f"checkpoint {checkpoint} has no action statistics (norm_stats) to act with")
        action_stats = select_stats(assets["norm_stats"], config.unnorm_key or None)
        tokenizer_path = assets.get("tokenizer") or tiny_tokenizer()
        description = checkpoint
    decoder = ActionDecoder(model_cfg, action_stats)
    return LoadedPolicy(params, model_cfg, decoder, load_tokenizer(tokenizer_path), description, critic)
