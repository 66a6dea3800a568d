"""The pure, jit-compiled learning step: advantages, then every epoch, minibatch and
gradient-accumulation step of PPO (or GRPO) inside one `lax.scan`.

`Rollout` (rl2vla_jax/policy/episodes.py) fields are time-major [T, B, ...]; the update
flattens them to N = T*B samples. Samples with `Rollout.valid = 0` (a dropped episode's) take
no part: GAE does not reach them, advantage normalisation and every loss and logged mean leave
them out, and each optimizer step averages over its valid samples only, so its gradient is
that of the same step with those samples removed.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from rl2vla_jax.models.trainable import merge
from rl2vla_jax.policy.episodes import Rollout
from rl2vla_jax.policy.preprocess import pixel_values
from rl2vla_jax.policy.sampling import action_logits_and_hidden
from rl2vla_jax.rl import advantages as adv_lib
from rl2vla_jax.rl import entropy as ent_lib
from rl2vla_jax.rl import losses
from rl2vla_jax.train.hparams import RLHparams
from rl2vla_jax.train.state import TrainState


def evaluate_actions(hp: RLHparams, model_config, critic: nn.Module, policy_params, critic_params, batch):
    """Score stored actions under the current policy: token log-probs [N, 7], token entropies,
    descriptor, value."""
    logits, hidden = action_logits_and_hidden(
        policy_params,
        model_config,
        pixel_values(batch["images"]),
        batch["prompt_ids"],
        batch["prompt_mask"],
        batch["tokens"],
    )
    token_log_probs = ent_lib.token_log_probs(logits, batch["tokens"], hp.temperature)
    token_entropies = ent_lib.token_entropy(logits)
    descriptor = ent_lib.entropy_descriptor(
        token_entropies, hp.descriptor_mode, hp.detach_descriptor, hp.descriptor_tokens
    )
    if hp.detach_hidden:
        hidden = jax.lax.stop_gradient(hidden)
    values = critic.apply({"params": critic_params}, hidden, descriptor) if hp.uses_critic else None
    return token_log_probs, token_entropies, descriptor, values


def policy_loss_and_stats(hp: RLHparams, token_log_probs, old_token_log_probs, advantages, weights):
    """PPO's clipped surrogate and its diagnostics for `hp.ratio` and `hp.token_reduction`."""
    if hp.ratio == "action" and hp.token_reduction == "mean":  # ours: one ratio, one term per action
        log_prob, old_log_prob = jnp.sum(token_log_probs, axis=-1), jnp.sum(old_token_log_probs, axis=-1)
        loss = losses.ppo_policy_loss(log_prob, old_log_prob, advantages, hp.clip_eps, weights)
        return loss, losses.ppo_policy_stats(log_prob, old_log_prob, hp.clip_eps, weights)
    loss = losses.ppo_token_policy_loss(
        token_log_probs, old_token_log_probs, advantages, hp.clip_eps, hp.ratio, hp.token_reduction, weights
    )
    return loss, losses.ppo_token_policy_stats(
        token_log_probs, old_token_log_probs, hp.clip_eps, hp.ratio, weights
    )


def minibatch_loss(hp, model_config, critic, trainable, critic_params, frozen, batch):
    """`batch["weights"]` [M]: valid / (fraction of valid samples in the optimizer step), so
    that the mean over the step's accumulation steps is the mean over its valid samples."""
    policy_params = merge(trainable, frozen)
    token_log_probs, token_entropies, descriptor, values = evaluate_actions(
        hp, model_config, critic, policy_params, critic_params, batch
    )
    weights = batch["weights"]
    policy_loss, stats = policy_loss_and_stats(
        hp, token_log_probs, batch["token_log_probs"], batch["advantages"], weights
    )
    metrics = {"policy_loss": policy_loss, "entropy": jnp.mean(weights[:, None] * token_entropies)} | stats
    total = policy_loss
    if hp.uses_critic:
        if hp.value_loss_entropy_coef:
            weights = weights * losses.entropy_value_weights(descriptor, hp.value_loss_entropy_coef)
        value_loss = losses.value_loss(
            values, batch["values"], batch["returns"], hp.value_clip_eps, hp.huber_delta, weights
        )
        total = total + hp.value_loss_coef * value_loss
        metrics["value_loss"] = value_loss
    return total, metrics


def compute_advantages(hp: RLHparams, rollout: Rollout) -> tuple[jax.Array, jax.Array]:
    """(advantages, returns) [T, B] before buffer normalisation: GAE for PPO (bootstrapping
    V(s_T) at the time limit unless `hp.bootstrap_truncation` is off, as RL4VLA); for GRPO the
    undiscounted reward-to-go standardised within each group, or RL4VLA's reward-to-go of
    buffer-standardised rewards (`hp.grpo_advantage`)."""
    valid = rollout.valid
    if hp.uses_critic:
        bootstrap = rollout.bootstrap_value
        if not hp.bootstrap_truncation:  # RL4VLA: mask = 0 at the time limit
            bootstrap = jnp.zeros_like(bootstrap)
        advantages, returns = adv_lib.gae_advantages(
            rollout.rewards, rollout.values, rollout.dones, bootstrap, hp.gamma, hp.gae_lambda, valid
        )
    elif hp.grpo_advantage == "buffer_rewards":
        advantages = adv_lib.buffer_reward_advantages(
            rollout.rewards, rollout.dones, hp.grpo_nonzero_rewards_only, valid=valid
        )
        returns = advantages
    else:
        returns = adv_lib.reward_to_go(rollout.rewards, rollout.dones, 1.0)
        advantages = adv_lib.grpo_advantages(returns, rollout.group_ids, valid=valid)
    return advantages, returns


def _clip_by_global_norm(grads, max_norm):
    """One global norm over actor AND critic gradients (RL4VLA clips them together)."""
    norm = optax.tree.norm(grads)
    scale = jnp.minimum(1.0, max_norm / (norm + 1e-6))
    return jax.tree.map(lambda g: g * scale, grads), norm


def update(
    hp: RLHparams,
    model_config,
    critic: nn.Module,
    actor_tx: optax.GradientTransformation,
    critic_tx: optax.GradientTransformation,
    max_grad_norm: float,
    state: TrainState,
    rollout: Rollout,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """All PPO epochs x minibatches x accumulation steps on one rollout. Pure; jit it with the
    first six arguments bound (functools.partial). Returns the new state and scalar metrics."""
    raw_advantages, returns = compute_advantages(hp, rollout)
    valid = rollout.valid.astype(jnp.float32)
    advantages = adv_lib.normalize(raw_advantages, valid) if hp.normalize_advantages else raw_advantages
    T, B = rollout.rewards.shape
    num_samples = T * B
    per_update = hp.minibatch_size * hp.grad_accum_steps
    num_updates = num_samples // per_update
    samples = {
        "images": rollout.images,
        "prompt_ids": rollout.prompt_ids,
        "prompt_mask": rollout.prompt_mask,
        "tokens": rollout.tokens,
        "token_log_probs": rollout.token_log_probs,
        "values": rollout.values,
        "advantages": advantages,
        "returns": returns,
        "valid": valid,
    }
    samples = jax.tree.map(lambda x: x.reshape(num_samples, *x.shape[2:]), samples)
    grad_fn = jax.grad(
        functools.partial(minibatch_loss, hp, model_config, critic), argnums=(0, 1), has_aux=True
    )

    def optimizer_step(carry, chunk):
        trainable, critic_params, actor_opt_state, critic_opt_state = carry

        def accumulate(grad_sum, micro):
            grads, metrics = grad_fn(trainable, critic_params, state.frozen, micro)
            return jax.tree.map(jnp.add, grad_sum, grads), metrics

        # Each micro-batch mean weighs a valid sample by 1 / (valid fraction of this step): the
        # mean over the accumulation steps is then the mean over the step's valid samples
        # (weights are exactly 1 when every sample is valid).
        count = jnp.sum(chunk["valid"])
        chunk = chunk | {"weights": chunk["valid"] * (chunk["valid"].size / jnp.maximum(count, 1.0))}
        zeros = jax.tree.map(jnp.zeros_like, (trainable, critic_params))
        grad_sum, metrics = jax.lax.scan(accumulate, zeros, chunk)
        grads = jax.tree.map(lambda g: g / hp.grad_accum_steps, grad_sum)
        (actor_grads, critic_grads), grad_norm = _clip_by_global_norm(grads, max_grad_norm)
        actor_updates, new_actor_opt_state = actor_tx.update(actor_grads, actor_opt_state, trainable)
        new = (
            optax.apply_updates(trainable, actor_updates),
            critic_params,
            new_actor_opt_state,
            critic_opt_state,
        )
        if hp.uses_critic:
            critic_updates, new_critic_opt_state = critic_tx.update(
                critic_grads, critic_opt_state, critic_params
            )
            new = (new[0], optax.apply_updates(critic_params, critic_updates), new[2], new_critic_opt_state)
        # A step with no valid sample changes nothing (Adam's momentum would still move the params).
        old = (trainable, critic_params, actor_opt_state, critic_opt_state)
        carry = jax.tree.map(lambda n, o: jnp.where(count > 0, n, o), new, old)
        metrics = jax.tree.map(jnp.mean, metrics) | {"grad_norm": grad_norm}
        return carry, metrics

    def epoch(carry, key):
        order = jax.random.permutation(key, num_samples)
        chunks = jax.tree.map(
            lambda x: x[order].reshape(num_updates, hp.grad_accum_steps, hp.minibatch_size, *x.shape[1:]),
            samples,
        )
        return jax.lax.scan(optimizer_step, carry, chunks)

    rng, epoch_rng = jax.random.split(state.rng)
    carry = (state.trainable, state.critic, state.actor_opt_state, state.critic_opt_state)
    carry, metrics = jax.lax.scan(epoch, carry, jax.random.split(epoch_rng, hp.epochs))
    trainable, critic_params, actor_opt_state, critic_opt_state = carry
    # The first `actor_frozen_iterations` only train the critic: the policy and its optimizer
    # state stay as they were, so its first moves use a critic that has seen returns. (A Python
    # `if`: hp is static, so the default program, N = 0, carries no select.)
    if hp.actor_frozen_iterations:
        frozen = state.iteration < hp.actor_frozen_iterations
        trainable, actor_opt_state = jax.tree.map(
            lambda old, new: jnp.where(frozen, old, new),
            (state.trainable, state.actor_opt_state),
            (trainable, actor_opt_state),
        )
    metrics = jax.tree.map(jnp.mean, metrics)
    if hp.uses_critic:
        metrics["explained_variance"] = losses.explained_variance(rollout.values, returns, valid)
    metrics["advantage_std"] = jnp.sqrt(losses.masked_variance(raw_advantages, valid))
    new_state = state.replace(
        iteration=state.iteration + 1,
        trainable=trainable,
        critic=critic_params,
        actor_opt_state=actor_opt_state,
        critic_opt_state=critic_opt_state,
        rng=rng,
    )
    return new_state, metrics
