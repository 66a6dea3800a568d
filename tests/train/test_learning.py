"""The learning test: PPO (each critic variant) and GRPO must raise the tiny VLA's return on the
pure-JAX reach task (rl2vla_jax/envs/reach.py) within a fixed budget, with fixed seeds.
Flipping the advantage's sign makes it fail (the return falls instead)."""

import jax
import numpy as np
import pytest

from configs import default
from rl2vla_jax.data.prompt import load_tokenizer, tiny_tokenizer
from rl2vla_jax.envs import reach
from rl2vla_jax.policy import loading
from rl2vla_jax.train import builders, hparams, scan_rollout

ITERATIONS = 24
MARGIN = 0.15  # mean return of the last 6 iterations minus that of the first 4


def reach_config(critic: str, algorithm: str, entropy_coef: float, seed: int):
    """The film_evi CPU default with a CI-sized budget."""
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


def train_returns(critic: str, algorithm: str, entropy_coef: float, iterations: int, seed: int = 0):
    """Train the tiny VLA on reach; the mean episode return of each iteration."""
    config = reach_config(critic, algorithm, entropy_coef, seed)
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
    critic_module = builders.make_critic(hp, config)
    train_state = builders.initial_state(config, hp, model_cfg, critic_module)
    actor_tx, critic_tx = builders.optimizers(config)
    ids, mask = reach.prompt_for(load_tokenizer(tiny_tokenizer()), model_cfg.llm.vocab_size)
    iteration = scan_rollout.make_train_iteration(
        reach,
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
        returns.append(float(jax.device_get(metrics["return"])))
    return returns


@pytest.mark.slow
@pytest.mark.parametrize(
    "critic, algorithm, entropy_coef",
    [
        ("film_evi", "ppo", 0.0),
        ("value_head", "ppo", 0.0),
        ("entropy_concat", "ppo", 0.0),
        ("value_head", "ppo", 0.5),  # entropy-weighted value loss
        ("value_head", "grpo", 0.0),
    ],
)
def test_rl_raises_return_on_reach(critic, algorithm, entropy_coef):
    returns = train_returns(critic, algorithm, entropy_coef, iterations=ITERATIONS, seed=0)
    before, after = np.mean(returns[:4]), np.mean(returns[-6:])
    print(f"{critic}/{algorithm}: return {before:.3f} -> {after:.3f}")
    assert after - before > MARGIN, (before, after, returns)
