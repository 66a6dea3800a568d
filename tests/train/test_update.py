"""The jitted update's options on the tiny OpenVLA: PPO's per-token ratio, and the samples of
dropped (crashed or hung) episodes, which must change nothing."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import film_evi, grpo
from rl2vla_jax.policy import loading
from rl2vla_jax.rl import advantages as adv_lib
from rl2vla_jax.rl import losses
from rl2vla_jax.train import builders, hparams
from rl2vla_jax.train import update as update_lib
from rl2vla_jax.validation import ConfigError
from tests.train.test_loop import _random_rollout

SGD = optax.sgd(1.0)  # params move by exactly minus the gradient: updates compare gradients


def _setup(horizon, num_envs, minibatch, accum, **ppo):
    config = film_evi.get_config()
    config.env.num_envs, config.env.max_episode_steps = num_envs, horizon
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = minibatch, accum
    for key, value in ppo.items():
        config.ppo[key] = value
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
    critic = builders.make_critic(hp, config)
    state = builders.initial_state(config, hp, model_cfg, critic)
    return config, hp, model_cfg, critic, state


def _flat(rollout):
    fields = ("images", "prompt_ids", "prompt_mask", "tokens")
    return {k: jnp.reshape(getattr(rollout, k), (-1, *getattr(rollout, k).shape[2:])) for k in fields}


def _near_policy(rollout, hp, model_cfg, critic, state, key, scale=0.15):
    """The rollout with old token log-probs near the current policy's (ratios near 1, some
    clipped), as after a few optimizer steps."""
    token_log_probs, *_ = update_lib.evaluate_actions(
        hp, model_cfg, critic, state.policy_params, state.critic, _flat(rollout)
    )
    old = token_log_probs.reshape(rollout.token_log_probs.shape)
    return rollout.replace(token_log_probs=old + scale * jax.random.normal(key, old.shape))


def test_token_ratio_runs_an_update_with_the_per_token_loss():
    # one optimizer step over all 16 samples: the logged loss is the loss at the initial params
    _, hp, model_cfg, critic, state = _setup(4, 4, 16, 1, ratio="token", token_reduction="sum")
    rollout = _random_rollout(jax.random.PRNGKey(7), model_cfg)
    rollout = _near_policy(rollout, hp, model_cfg, critic, state, jax.random.PRNGKey(8))
    actor_tx, critic_tx = builders.optimizers(film_evi.get_config())
    learn = jax.jit(functools.partial(update_lib.update, hp, model_cfg, critic, actor_tx, critic_tx, 10.0))
    new_state, metrics = learn(state, rollout)

    token_log_probs, *_ = update_lib.evaluate_actions(
        hp, model_cfg, critic, state.policy_params, state.critic, _flat(rollout)
    )
    raw, _ = update_lib.compute_advantages(hp, rollout)
    advantages = adv_lib.normalize(raw, rollout.valid).reshape(-1)
    old = rollout.token_log_probs.reshape(-1, 7)
    expected = losses.ppo_token_policy_loss(token_log_probs, old, advantages, hp.clip_eps, "token", "sum")
    np.testing.assert_allclose(metrics["policy_loss"], expected, rtol=1e-4, atol=1e-6)
    stats = losses.ppo_token_policy_stats(token_log_probs, old, hp.clip_eps, "token")
    np.testing.assert_allclose(metrics["clip_fraction"], stats["clip_fraction"], rtol=1e-5)
    assert 0.0 < float(metrics["clip_fraction"]) < 1.0
    action = losses.ppo_policy_loss(token_log_probs.sum(-1), old.sum(-1), advantages, hp.clip_eps)
    assert abs(float(expected) - float(action)) > 1e-3  # the option does change the loss
    assert int(new_state.iteration) == 1
    moved = [
        np.abs(a - b).max()
        for a, b in zip(jax.tree.leaves(new_state.trainable), jax.tree.leaves(state.trainable))
    ]
    assert max(moved) > 0.0


def _drop_envs(rollout, dropped):
    """`rollout` with the envs in `dropped` marked invalid, their data replaced by garbage
    (what a hung worker leaves: stale images, zero rewards, terminal steps)."""
    valid = np.ones(rollout.rewards.shape, np.float32)
    valid[:, dropped] = 0.0
    rewards = np.array(rollout.rewards)
    rewards[:, dropped] = 50.0
    return rollout.replace(valid=jnp.asarray(valid), rewards=jnp.asarray(rewards))


def _keep_envs(rollout, kept):
    env_axes = rollout.env_axes()
    return jax.tree.map(
        lambda x, axis: jnp.take(jnp.asarray(x), jnp.asarray(kept), axis=axis), rollout, env_axes
    )


def test_dropped_episodes_change_nothing():
    # T=3 x B=5 samples, envs 1 and 3 dropped. Masked: one optimizer step of 3 accumulation
    # micro-batches of 5 (the dropped samples spread over them at random). Removed: the 9 kept
    # samples in one micro-batch. Same gradient (SGD(1): same update), same logged means.
    kept, dropped = [0, 2, 4], [1, 3]
    _, hp, model_cfg, critic, state = _setup(3, 5, 5, 3)
    state = state.replace(actor_opt_state=SGD.init(state.trainable), critic_opt_state=SGD.init(state.critic))
    rollout = _random_rollout(jax.random.PRNGKey(11), model_cfg, horizon=3, num_envs=5)
    rollout = _near_policy(rollout, hp, model_cfg, critic, state, jax.random.PRNGKey(12))
    masked = _drop_envs(rollout, dropped)
    removed = _keep_envs(rollout, kept)
    _, hp_removed, *_ = _setup(3, 3, 9, 1)

    def run(hp, batch):
        learn = jax.jit(functools.partial(update_lib.update, hp, model_cfg, critic, SGD, SGD, 1e9))
        new_state, metrics = learn(state, batch)
        delta = jax.tree.map(
            jnp.subtract, (new_state.trainable, new_state.critic), (state.trainable, state.critic)
        )
        return delta, jax.device_get(metrics)

    masked_delta, masked_metrics = run(hp, masked)
    removed_delta, removed_metrics = run(hp_removed, removed)
    for a, b in zip(jax.tree.leaves(masked_delta), jax.tree.leaves(removed_delta)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)  # summation order
    for key in (
        "policy_loss",
        "value_loss",
        "approx_kl",
        "clip_fraction",
        "entropy",
        "grad_norm",
        "explained_variance",
        "advantage_std",
    ):
        np.testing.assert_allclose(
            masked_metrics[key], removed_metrics[key], rtol=2e-4, atol=1e-6, err_msg=key
        )
    # The same rollout with every sample valid trains on the garbage: a different gradient.
    healthy_delta, _ = run(hp, _drop_envs(rollout, []).replace(rewards=masked.rewards))
    gap = max(
        np.abs(a - b).max() for a, b in zip(jax.tree.leaves(healthy_delta), jax.tree.leaves(removed_delta))
    )
    assert gap > 1e-3


def test_an_update_with_no_valid_sample_changes_nothing():
    # AdamW's weight decay would move the params even with zero gradients: the step is skipped.
    config, hp, model_cfg, critic, state = _setup(3, 5, 5, 3)
    rollout = _random_rollout(jax.random.PRNGKey(13), model_cfg, horizon=3, num_envs=5)
    rollout = rollout.replace(valid=jnp.zeros_like(rollout.valid))
    actor_tx, critic_tx = builders.optimizers(config)
    learn = jax.jit(functools.partial(update_lib.update, hp, model_cfg, critic, actor_tx, critic_tx, 10.0))
    new_state, metrics = learn(state, rollout)
    for a, b in zip(
        jax.tree.leaves((new_state.trainable, new_state.critic, new_state.actor_opt_state)),
        jax.tree.leaves((state.trainable, state.critic, state.actor_opt_state)),
    ):
        np.testing.assert_array_equal(a, b)
    assert float(metrics["policy_loss"]) == 0.0 and float(metrics["value_loss"]) == 0.0


def _value_loss_grad_on_policy(detach_hidden):
    """Largest gradient of the minibatch loss on the LoRA factors with zero advantages: the
    policy term contributes nothing, so all of it comes through the critic's input."""
    _, hp, model_cfg, critic, state = _setup(4, 4, 16, 1)
    hp = dataclasses.replace(hp, detach_hidden=detach_hidden)
    rollout = _random_rollout(jax.random.PRNGKey(3), model_cfg)
    batch = _flat(rollout) | {
        "token_log_probs": rollout.token_log_probs.reshape(-1, 7),
        "advantages": jnp.zeros((16,)),
        "values": rollout.values.reshape(-1),
        "returns": rollout.values.reshape(-1) + 1.0,  # a value error the critic must reduce
        "weights": jnp.ones((16,)),
    }

    def loss(trainable):
        total, _ = update_lib.minibatch_loss(
            hp, model_cfg, critic, trainable, state.critic, state.frozen, batch
        )
        return total

    return max(float(jnp.abs(g).max()) for g in jax.tree.leaves(jax.grad(loss)(state.trainable)))


def test_detach_hidden_keeps_the_value_loss_off_the_policy():
    assert _value_loss_grad_on_policy(detach_hidden=False) > 0.0  # RL4VLA: shared hidden state
    assert _value_loss_grad_on_policy(detach_hidden=True) == 0.0


def test_actor_frozen_iterations_keep_the_policy_while_the_critic_learns():
    config, _, model_cfg, critic, state = _setup(4, 4, 8, 1)
    config.optim.actor_frozen_iterations = 1
    hp = hparams.rl_hparams(config)
    actor_tx, critic_tx = builders.optimizers(config)
    learn = jax.jit(functools.partial(update_lib.update, hp, model_cfg, critic, actor_tx, critic_tx, 10.0))
    rollout = _random_rollout(jax.random.PRNGKey(7), model_cfg)

    def moved(a, b):
        return max(float(np.abs(x - y).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

    first, _ = learn(state, rollout)
    assert moved(first.critic, state.critic) > 0.0
    assert moved(first.trainable, state.trainable) == 0.0
    assert moved(first.actor_opt_state, state.actor_opt_state) == 0.0  # Adam starts afresh after it
    second, _ = learn(first, rollout)
    assert moved(second.trainable, first.trainable) > 0.0
    bad = film_evi.get_config()
    bad.optim.actor_frozen_iterations = -1
    with pytest.raises(ConfigError, match="actor_frozen_iterations=-1 must be >= 0"):
        hparams.rl_hparams(bad)
    no_critic = grpo.get_config()
    no_critic.optim.actor_frozen_iterations = 2
    with pytest.raises(ConfigError, match="algorithm=grpo has none; set it to 0"):
        hparams.rl_hparams(no_critic)
