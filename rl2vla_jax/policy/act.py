"""The act step: one jitted program per run that samples 7 action tokens for a batch of envs,
scores them, and values the state with the critic (when there is one)."""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rl2vla_jax.policy.preprocess import pixel_values
from rl2vla_jax.policy.sampling import sample_actions
from rl2vla_jax.rl import entropy as entropy_lib


def act(
    model_config,
    critic: nn.Module | None,
    descriptor_mode: str,
    descriptor_tokens: str,
    policy_params,
    critic_params,
    images: jax.Array,
    prompt_ids: jax.Array,
    prompt_mask: jax.Array,
    rng: jax.Array,
    temperature: float | jax.Array,
) -> dict[str, Any]:
    """images uint8 [B, S, S, 3] at the model's size; prompts right-padded [B, L]; rng one key
    for the batch or one per row (see `sampling.sample_actions`).
    Returns tokens [B, 7] (bin indices), token_log_probs [B, 7] (at `temperature`), log_prob [B]
    (their sum), entropy [B] (mean token entropy), entropies [B, 7], descriptor [B] (the
    critic's entropy input, always detached here), value [B] (zeros without a critic)."""
    out = sample_actions(
        policy_params, model_config, pixel_values(images), prompt_ids, prompt_mask, rng, temperature
    )
    descriptor = entropy_lib.entropy_descriptor(out["entropies"], descriptor_mode, True, descriptor_tokens)
    if critic is None:
        value = jnp.zeros(descriptor.shape, jnp.float32)
    else:
        value = critic.apply({"params": critic_params}, out["hidden"], descriptor)
    return {
        "tokens": out["tokens"],
        "token_log_probs": out["log_probs"],
        "log_prob": jnp.sum(out["log_probs"], axis=-1),
        "entropy": jnp.mean(out["entropies"], axis=-1),
        "entropies": out["entropies"],
        "descriptor": descriptor,
        "value": value,
    }


def make_act(
    model_config,
    critic: nn.Module | None = None,
    descriptor_mode: str = "mean",
    descriptor_tokens: str = "all",
):
    """`act` jitted with the model, critic and descriptor (mode, tokens) bound:
    fn(policy_params, critic_params, images, prompt_ids, prompt_mask, rng, temperature)."""
    return jax.jit(functools.partial(act, model_config, critic, descriptor_mode, descriptor_tokens))
