"""A pure-JAX task on which RL must visibly learn, with its whole rollout and update in one jit
(PureJaxRL-style). It is the learning test of the trainer: small enough for CI, real enough
that a sign error in the advantage makes it fail.

Task "reach": the image shows a red bar at the target column g and a green bar at the arm's
column x. Each step the first action dimension moves the arm: x' = clip(x + STEP * a_0, -1, 1),
with a_0 the bin centre of the first action token. Reward is a potential difference, as in
RL4VLA: r_t = |x_t - g| - |x_{t+1} - g|, so an episode's return is how much closer the arm got.
The arm starts left of the target (x in [-0.9, 0.1], g in [0.3, 0.9]), so a CI-sized budget can
learn the direction first; stopping at the target (overshoot costs reward) needs the image.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rl2vla_jax.data.prompt import encode_prompts, load_tokenizer, tiny_tokenizer
from rl2vla_jax.train import builders, hparams
from rl2vla_jax.train import update as update_lib

STEP = 0.5
INSTRUCTION = "move the arm to the red line"


@struct.dataclass
class ReachState:
    arm: jax.Array  # [B] in [-1, 1]
    target: jax.Array  # [B] in [-1, 1]


def reset(rng: jax.Array, num_envs: int) -> ReachState:
    arm_rng, target_rng = jax.random.split(rng)
    return ReachState(
        arm=jax.random.uniform(arm_rng, (num_envs,), minval=-0.9, maxval=0.1),
        target=jax.random.uniform(target_rng, (num_envs,), minval=0.3, maxval=0.9),
    )


def render(state: ReachState, image_size: int) -> jax.Array:
    """uint8 [B, S, S, 3]: grey background, red target column, green arm column."""
    columns = jnp.arange(image_size)

    def column_of(x):
        return jnp.round((x + 1.0) / 2.0 * (image_size - 1)).astype(jnp.int32)

    target_col = columns[None, :] == column_of(state.target)[:, None]  # [B, S]
    arm_col = columns[None, :] == column_of(state.arm)[:, None]
    red = jnp.where(target_col, 255, 60)
    green = jnp.where(arm_col, 255, 60)
    blue = jnp.full_like(red, 60)
    rgb = jnp.stack([red, green, blue], axis=-1).astype(jnp.uint8)  # [B, S, 3]
    return jnp.broadcast_to(rgb[:, None], (rgb.shape[0], image_size, image_size, 3))


def decode_bins(bins: jax.Array, n_bins: int = 256) -> jax.Array:
    """Bin index k -> normalised action, OpenVLA's decoding (data/action_tokenizer.py) in jnp:
    a = centre[clip(n_bins - 1 - k, 0, n_bins - 2)], so a high bin index is a low action."""
    edges = jnp.linspace(-1.0, 1.0, n_bins)
    centres = (edges[:-1] + edges[1:]) / 2.0
    return centres[jnp.clip(n_bins - 1 - bins, 0, n_bins - 2)]


def step(state: ReachState, tokens: jax.Array) -> tuple[ReachState, jax.Array]:
    move = decode_bins(tokens[:, 0])
    arm = jnp.clip(state.arm + STEP * move, -1.0, 1.0)
    reward = jnp.abs(state.arm - state.target) - jnp.abs(arm - state.target)
    return state.replace(arm=arm), reward


def make_train_iteration(
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
    act = functools.partial(update_lib.policy_step, hp, model_config, critic)
    learn = functools.partial(update_lib.update, hp, model_config, critic, actor_tx, critic_tx, max_grad_norm)

    @jax.jit
    def iteration(train_state):
        rng, reset_rng, rollout_rng = jax.random.split(train_state.rng, 3)
        train_state = train_state.replace(rng=rng)
        env_state = reset(reset_rng, num_envs)

        def env_step(env_state, step_rng):
            images = render(env_state, model_config.image_size)
            out = act(train_state, images, prompt_ids, prompt_mask, step_rng, hp.temperature)
            next_state, reward = step(env_state, out["tokens"])
            transition = (images, out["tokens"], out["log_prob"], out["value"], reward)
            return next_state, transition

        step_rngs = jax.random.split(rollout_rng, horizon + 1)
        final_state, (images, tokens, log_probs, values, rewards) = jax.lax.scan(
            env_step, env_state, step_rngs[:-1]
        )
        final = act(
            train_state,
            render(final_state, model_config.image_size),
            prompt_ids,
            prompt_mask,
            step_rngs[-1],
            hp.temperature,
        )
        rollout = update_lib.Rollout(
            images=images,
            prompt_ids=jnp.broadcast_to(prompt_ids, (horizon, *prompt_ids.shape)),
            prompt_mask=jnp.broadcast_to(prompt_mask, (horizon, *prompt_mask.shape)),
            tokens=tokens,
            log_probs=log_probs,
            values=values,
            rewards=rewards,
            dones=jnp.zeros_like(rewards),
            bootstrap_value=final["value"],
            group_ids=jnp.arange(num_envs) // hp.group_size,
        )
        train_state, metrics = learn(train_state, rollout)
        metrics["return"] = jnp.mean(jnp.sum(rewards, axis=0))
        return train_state, metrics

    return iteration


def prompt_for(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    ids, mask = encode_prompts(tokenizer, [INSTRUCTION])
    return ids[0], mask[0]


def reach_config(critic: str, algorithm: str, entropy_coef: float, seed: int):
    """The learning-test set-up: the film_evi CPU default with a CI-sized budget."""
    from configs import default

    c = default.base_config()
    c.seed = seed
    c.algorithm, c.critic.name = algorithm, critic
    c.ppo.value_loss_entropy_coef = entropy_coef
    c.env.num_envs, c.env.max_episode_steps = 32, 8
    c.ppo.minibatch_size, c.ppo.grad_accum_steps, c.ppo.epochs = 64, 1, 2
    c.critic.hidden_sizes, c.critic.film_hidden_size = (32, 16), 16
    c.grpo_group_size = 4
    c.optim.actor_lr, c.optim.weight_decay = 2e-3, 0.0
    c.lock()
    return c


def train_returns(
    critic: str, algorithm: str, entropy_coef: float, iterations: int, seed: int = 0
) -> list[float]:
    """Train the tiny VLA on reach; the mean episode return of each iteration."""
    config = reach_config(critic, algorithm, entropy_coef, seed)
    hp = hparams.rl_hparams(config)
    model_cfg = builders.model_config(config)
    critic_module = builders.make_critic(hp, config)
    train_state = builders.initial_state(config, hp, model_cfg, critic_module)
    actor_tx, critic_tx = builders.optimizers(config)
    ids, mask = prompt_for(load_tokenizer(tiny_tokenizer()))
    iteration = make_train_iteration(
        hp,
        model_cfg,
        critic_module,
        actor_tx,
        critic_tx,
        config.optim.max_grad_norm,
        ids,
        mask,
        config.env.num_envs,
        config.env.max_episode_steps,
    )
    returns = []
    for _ in range(iterations):
        train_state, metrics = iteration(train_state)
        returns.append(float(metrics["return"]))
    return returns
