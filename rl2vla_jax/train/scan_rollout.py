"""Training on a pure-JAX environment: the whole rollout (a `lax.scan` over env steps) and the
update in one jitted program (PureJaxRL-style). The environment is a module with
`reset(rng, num_envs) -> state`, `render(state, image_size) -> uint8 [B, S, S, 3]` and
`step(state, tokens) -> (state, reward)`, e.g. `rl2vla_jax.envs.reach`.
"""

import functools

import jax
import jax.numpy as jnp

from rl2vla_jax.policy.act import act as act_step
from rl2vla_jax.policy.episodes import Rollout
from rl2vla_jax.train import update as update_lib


def make_train_iteration(
    env,
    hp,
    model_config,
    critic,
    actor_tx,
    critic_tx,
    max_grad_norm,
    prompt_ids,
    prompt_mask,
    num_envs: int,
    horizon: int,
):
    """A jitted `iteration(train_state) -> (train_state, metrics)`: rollout + update."""
    prompt_ids = jnp.broadcast_to(jnp.asarray(prompt_ids), (num_envs, prompt_ids.shape[-1]))
    prompt_mask = jnp.broadcast_to(jnp.asarray(prompt_mask), (num_envs, prompt_mask.shape[-1]))
    act = functools.partial(
        act_step, model_config, critic if hp.uses_critic else None, hp.descriptor_mode, hp.descriptor_tokens
    )
    learn = functools.partial(update_lib.update, hp, model_config, critic, actor_tx, critic_tx, max_grad_norm)

    @jax.jit
    def iteration(train_state):
        rng, reset_rng, rollout_rng = jax.random.split(train_state.rng, 3)
        train_state = train_state.replace(rng=rng)
        env_state = env.reset(reset_rng, num_envs)
        params, critic_params = train_state.policy_params, train_state.critic

        def env_step(env_state, step_rng):
            images = env.render(env_state, model_config.image_size)
            out = act(params, critic_params, images, prompt_ids, prompt_mask, step_rng, hp.temperature)
            next_state, reward = env.step(env_state, out["tokens"])
            transition = (images, out["tokens"], out["token_log_probs"], out["value"], reward)
            return next_state, transition

        step_rngs = jax.random.split(rollout_rng, horizon + 1)
        final_state, (images, tokens, token_log_probs, values, rewards) = jax.lax.scan(
            env_step, env_state, step_rngs[:-1]
        )
        final = act(
            params,
            critic_params,
            env.render(final_state, model_config.image_size),
            prompt_ids,
            prompt_mask,
            step_rngs[-1],
            hp.temperature,
        )
        rollout = Rollout(
            images=images,
            prompt_ids=jnp.broadcast_to(prompt_ids, (horizon, *prompt_ids.shape)),
            prompt_mask=jnp.broadcast_to(prompt_mask, (horizon, *prompt_mask.shape)),
            tokens=tokens,
            token_log_probs=token_log_probs,
            values=values,
            rewards=rewards,
            dones=jnp.zeros_like(rewards),
            bootstrap_value=final["value"],
            group_ids=jnp.arange(num_envs) // hp.group_size,
            valid=jnp.ones_like(rewards),  # a pure-JAX env neither hangs nor crashes
        )
        train_state, metrics = learn(train_state, rollout)
        metrics["return"] = jnp.mean(jnp.sum(rewards, axis=0))
        return train_state, metrics

    return iteration
