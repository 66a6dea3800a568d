"""Critics that read the policy's hidden state h (last prompt position) and, for EVI, the
policy's token-entropy descriptor u. All are V(s; u): a policy-conditioned baseline.

Names used in configs (`config.critic.name`): see CRITICS at the bottom.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rl2vla_jax.models.vit import exact_gelu  # the erf GELU, as PyTorch's nn.GELU()

# RL4VLA's ValueHead (openvla/prismatic/extern/hf/modeling_prismatic.py): hidden layers
# kaiming_normal_(mode="fan_out", nonlinearity="relu"), i.e. an untruncated normal of variance
# 2 / fan_out (a Dense kernel's fan_out is its output size in Flax as in PyTorch), zero biases;
# the last layer has no bias and a N(0, 0.02) kernel.
_RL4VLA_HIDDEN_INIT = nn.initializers.variance_scaling(
    2.0, "fan_out", "normal"
)  # JAX: "normal" is untruncated
_RL4VLA_OUT_INIT = nn.initializers.normal(0.02)


class ValueHead(nn.Module):
    """RL4VLA's critic MLP: h -> Dense(512) -> GELU -> Dense(128) -> GELU -> Dense(1).
    `rl4vla_head`: its initialisation and its bias-free last layer (else Flax's defaults)."""

    hidden_sizes: Sequence[int] = (512, 128)
    rl4vla_head: bool = False

    @nn.compact
    def __call__(self, hidden: jax.Array, descriptor: jax.Array | None = None) -> jax.Array:
        x = hidden.astype(jnp.float32)
        hidden_init = _RL4VLA_HIDDEN_INIT if self.rl4vla_head else nn.linear.default_kernel_init
        for i, size in enumerate(self.hidden_sizes):
            x = exact_gelu(nn.Dense(size, kernel_init=hidden_init, name=f"dense_{i}")(x))
        if self.rl4vla_head:
            return nn.Dense(1, use_bias=False, kernel_init=_RL4VLA_OUT_INIT, name="out")(x)[..., 0]
        return nn.Dense(1, name="out")(x)[..., 0]


class EntropyConcatCritic(nn.Module):
    """Ablation: V = head([h, u]), the descriptor appended to the critic's input."""

    hidden_sizes: Sequence[int] = (512, 128)
    rl4vla_head: bool = False

    @nn.compact
    def __call__(self, hidden: jax.Array, descriptor: jax.Array) -> jax.Array:
        x = jnp.concatenate([hidden.astype(jnp.float32), descriptor.astype(jnp.float32)[..., None]], axis=-1)
        return ValueHead(self.hidden_sizes, self.rl4vla_head, name="value_head")(x)


def _identity_film_bias(feature_size: int):
    """Bias of FiLM's last layer: gamma = 1, beta = 0, so the critic starts unmodulated."""

    def init(key, shape, dtype=jnp.float32):
        del key
        assert shape == (2 * feature_size,), shape
        return jnp.concatenate([jnp.ones((feature_size,), dtype), jnp.zeros((feature_size,), dtype)])

    return init


class FiLMEVICritic(nn.Module):
    """Entropy-aware Value Injection by FiLM:

        [gamma, beta] = MLP(u),   h' = gamma * h + beta,   V = head(h')

    The MLP's last layer has a zero kernel and bias [1, 0], so at init h' = h exactly and the
    critic equals `ValueHead` with the same `value_head` params.
    """

    hidden_sizes: Sequence[int] = (512, 128)
    film_hidden_size: int = 64
    rl4vla_head: bool = False

    @nn.compact
    def __call__(self, hidden: jax.Array, descriptor: jax.Array) -> jax.Array:
        hidden = hidden.astype(jnp.float32)
        feature_size = hidden.shape[-1]
        u = descriptor.astype(jnp.float32)[..., None]
        z = exact_gelu(nn.Dense(self.film_hidden_size, name="film_hidden")(u))
        film = nn.Dense(
            2 * feature_size,
            kernel_init=nn.initializers.zeros,
            bias_init=_identity_film_bias(feature_size),
            name="film_out",
        )(z)
        gamma, beta = jnp.split(film, 2, axis=-1)
        return ValueHead(self.hidden_sizes, self.rl4vla_head, name="value_head")(gamma * hidden + beta)


class PlainCritic(nn.Module):
    """ValueHead wrapped to take (h, u) and ignore u: the "PPO without EVI" critic."""

    hidden_sizes: Sequence[int] = (512, 128)
    rl4vla_head: bool = False

    @nn.compact
    def __call__(self, hidden: jax.Array, descriptor: jax.Array | None = None) -> jax.Array:
        return ValueHead(self.hidden_sizes, self.rl4vla_head, name="value_head")(hidden)


CRITICS = {
    "value_head": PlainCritic,
    "entropy_concat": EntropyConcatCritic,
    "film_evi": FiLMEVICritic,
}


def make_critic(
    name: str, hidden_sizes: Sequence[int], film_hidden_size: int = 64, rl4vla_head: bool = False
) -> nn.Module:
    """The critic module for `config.critic.name`; an unknown name lists the valid ones."""
    if name not in CRITICS:
        raise ValueError(f"unknown critic {name!r}; valid critics: {', '.join(sorted(CRITICS))}")
    if name == "film_evi":
        return FiLMEVICritic(tuple(hidden_sizes), film_hidden_size, rl4vla_head)
    return CRITICS[name](tuple(hidden_sizes), rl4vla_head)
