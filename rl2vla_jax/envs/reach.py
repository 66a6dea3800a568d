"""A pure-JAX task on which RL must visibly learn (the trainer's learning test): small enough
for CI, real enough that a sign error in the advantage makes it fail. Trained with
`rl2vla_jax.train.scan_rollout` (rollout and update in one jit, PureJaxRL-style).

Task "reach": the image shows a red bar at the target column g and a green bar at the arm's
column x. Each step the first action dimension moves the arm: x' = clip(x + STEP * a_0, -1, 1),
with a_0 the bin centre of the first action token. Reward is a potential difference, as in
RL4VLA: r_t = |x_t - g| - |x_{t+1} - g|, so an episode's return is how much closer the arm got.
The arm starts left of the target (x in [-0.9, 0.1], g in [0.3, 0.9]), so a CI-sized budget can
learn the direction first; stopping at the target (overshoot costs reward) needs the image.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rl2vla_jax.data.action_tokenizer import decode_bin_indices
from rl2vla_jax.data.prompt import encode_prompts

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


def step(state: ReachState, tokens: jax.Array) -> tuple[ReachState, jax.Array]:
    move = decode_bin_indices(tokens[:, 0])
    arm = jnp.clip(state.arm + STEP * move, -1.0, 1.0)
    reward = jnp.abs(state.arm - state.target) - jnp.abs(arm - state.target)
    return state.replace(arm=arm), reward


def prompt_for(tokenizer, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    ids, mask = encode_prompts(tokenizer, [INSTRUCTION], vocab_size=vocab_size)
    return ids[0], mask[0]
