"""Advantage estimators. Arrays are time-major: [T, B] (T steps, B environments)."""

import jax
import jax.numpy as jnp


def gae_advantages(
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    bootstrap_value: jax.Array,
    gamma: float,
    lam: float,
    valid: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation (Schulman et al. 2016) by a reverse scan.

        delta_t = r_t + gamma * (1 - d_t) * V_{t+1} - V_t
        A_t     = delta_t + gamma * lam * (1 - d_t) * A_{t+1},    R_t = A_t + V_t

    with V_T = `bootstrap_value` (V of the state after the last step, [B]). `dones[t] = 1`
    means the episode TERMINATED with the transition taken at step t: nothing is bootstrapped
    through it. A time-limit truncation is not a termination: leave its done at 0 (at the end
    of the horizon the bootstrap value covers it).
    `valid` [T, B] (1 = a sample to learn from, 0 = one of a dropped episode): nothing is
    bootstrapped into or across an invalid sample (a valid step followed by an invalid one is
    treated as terminal; d_t above becomes 1 - (1 - d_t) v_{t+1}), and invalid samples get
    A = 0. The trainer marks whole episodes, so no valid sample is ever cut short that way.
    Returns (advantages [T, B], returns [T, B]).
    """
    rewards, values = rewards.astype(jnp.float32), values.astype(jnp.float32)
    not_done = 1.0 - dones.astype(jnp.float32)
    if valid is not None:
        valid = valid.astype(jnp.float32)
        not_done = not_done * jnp.concatenate([valid[1:], jnp.ones_like(valid[:1])], axis=0)
    next_values = jnp.concatenate([values[1:], bootstrap_value.astype(jnp.float32)[None]], axis=0)
    deltas = rewards + gamma * not_done * next_values - values

    def backward(carry, step):
        delta, keep = step
        advantage = delta + gamma * lam * keep * carry
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(bootstrap_value, jnp.float32), (deltas, not_done), reverse=True
    )
    if valid is not None:
        advantages = advantages * valid
    return advantages, advantages + values


def reward_to_go(rewards: jax.Array, dones: jax.Array, gamma: float = 1.0) -> jax.Array:
    """G_t = r_t + gamma * (1 - d_t) * G_{t+1}, G_T = 0 (undiscounted for GRPO). [T, B] -> [T, B]."""
    not_done = 1.0 - dones.astype(jnp.float32)

    def backward(carry, step):
        reward, keep = step
        ret = reward + gamma * keep * carry
        return ret, ret

    _, returns = jax.lax.scan(
        backward,
        jnp.zeros(rewards.shape[1:], jnp.float32),
        (rewards.astype(jnp.float32), not_done),
        reverse=True,
    )
    return returns


def grpo_advantages(
    returns: jax.Array, group_ids: jax.Array, eps: float = 1e-6, valid: jax.Array | None = None
) -> jax.Array:
    """Group-relative advantages (GRPO): standardise returns within each group.

        A_b = (G_b - mean_{b' in g(b)} G_b') / (std_{b' in g(b)} G_b' + eps)

    `returns` [..., B] with the group axis last (e.g. [T, B] reward-to-go: each step is
    standardised against the same step of the other group members); `group_ids` [B] ints in
    [0, B). std is the population standard deviation of the group. `valid` (shaped like
    `returns`): mean and std run over the valid members only, and invalid entries get A = 0.
    """
    returns = returns.astype(jnp.float32)
    num_segments = group_ids.shape[0]
    flat = returns.reshape(-1, returns.shape[-1])
    weights = jnp.ones_like(flat) if valid is None else valid.astype(jnp.float32).reshape(flat.shape)

    def group_mean(x, w):  # x, w [B] -> per-element weighted mean of its group, [B]
        counts = jax.ops.segment_sum(w, group_ids, num_segments)
        return (jax.ops.segment_sum(w * x, group_ids, num_segments) / jnp.maximum(counts, 1.0))[group_ids]

    mean = jax.vmap(group_mean)(flat, weights)
    std = jnp.sqrt(jax.vmap(group_mean)((flat - mean) ** 2, weights))
    return ((flat - mean) / (std + eps) * weights).reshape(returns.shape)


def buffer_reward_advantages(
    rewards: jax.Array,
    dones: jax.Array,
    nonzero_only: bool,
    eps: float = 1e-5,
    valid: jax.Array | None = None,
) -> jax.Array:
    """RL4VLA's "GRPO" advantage: no group baseline. Standardise the per-step rewards over the
    whole buffer, then sum them into undiscounted reward-to-go; that is the advantage.

        r~ = (r - mean(r)) / (std(r) + eps),    A_t = r~_t + (1 - d_t) * A_{t+1},   A_T = 0

    mean and (population) std run over every reward, or with `nonzero_only` (RL4VLA's
    --alg_grpo_fix) over the non-zero rewards only, the zero rewards staying 0.
    (SimplerEnv/simpler_env/utils/replay_buffer.py, compute_returns_grpo, eps 1e-5.)
    `valid` [T, B]: invalid rewards are left out of mean and std and zeroed (whole dropped
    episodes, so no valid return sums an invalid reward). [T, B] -> [T, B].
    """
    rewards = rewards.astype(jnp.float32)
    mask = rewards != 0 if nonzero_only else None
    if valid is not None:
        mask = valid if mask is None else mask * valid
    return reward_to_go(normalize(rewards, mask, eps), dones, 1.0)


def normalize(advantages: jax.Array, mask: jax.Array | None = None, eps: float = 1e-8) -> jax.Array:
    """(A - mean(A)) / (std(A) + eps) over the whole buffer (only where `mask` is set)."""
    advantages = advantages.astype(jnp.float32)
    if mask is None:
        mask = jnp.ones_like(advantages)
    mask = mask.astype(jnp.float32)
    count = jnp.maximum(mask.sum(), 1.0)
    mean = (advantages * mask).sum() / count
    std = jnp.sqrt((((advantages - mean) ** 2) * mask).sum() / count)
    return (advantages - mean) / (std + eps) * mask
