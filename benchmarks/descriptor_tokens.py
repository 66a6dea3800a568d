"""Which token entropies should feed the EVI descriptor: "all" 7 or the "first" only.

    ./run.sh python benchmarks/descriptor_tokens.py [--seeds=0,1,2] [--iterations=24] [--out=F.json]

FiLM-EVI PPO on the pure-JAX reach task (the CI learning test's budget, tests/train/
test_learning.py), once per descriptor choice and seed: the return before/after and the
critic's explained variance. Then, on the trained policy, how much of the "all" descriptor is
decided by the sampled action rather than the state: for 32 reach states, 16 actions sampled
per state; share = mean within-state variance of u / total variance of u (0 for "first" by
construction: H_1 is computed before any token is sampled).
"""

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root: `configs`, `tests`
from rl2vla_jax.data.prompt import load_tokenizer, tiny_tokenizer  # noqa: E402
from rl2vla_jax.envs import reach  # noqa: E402
from rl2vla_jax.policy import loading  # noqa: E402
from rl2vla_jax.policy.act import make_act  # noqa: E402
from rl2vla_jax.train import builders, hparams, scan_rollout  # noqa: E402
from tests.train.test_learning import reach_config  # noqa: E402  (the CI learning test's budget)


def run(tokens: str, seed: int, iterations: int, states: int = 32, samples: int = 16) -> dict:
    config = reach_config("film_evi", "ppo", 0.0, seed)
    config.unlock()
    config.critic.descriptor_tokens = tokens
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
    critic = builders.make_critic(hp, config)
    state = builders.initial_state(config, hp, model_cfg, critic)
    actor_tx, critic_tx = builders.optimizers(config)
    ids, mask = reach.prompt_for(load_tokenizer(tiny_tokenizer()))
    iteration = scan_rollout.make_train_iteration(
        reach, hp, model_cfg, critic, actor_tx, critic_tx, config.optim.max_grad_norm, ids, mask,
        config.env.num_envs, config.env.max_episode_steps,
    )  # fmt: skip
    returns, explained = [], []
    for _ in range(iterations):
        state, metrics = iteration(state)
        returns.append(float(metrics["return"]))
        explained.append(float(metrics["explained_variance"]))
    # Action dependence of the "all" descriptor on the trained policy (whatever `tokens` trained).
    act = make_act(model_cfg, critic, hp.descriptor_mode, tokens)
    env_state = reach.reset(jax.random.PRNGKey(100 + seed), states)
    images = reach.render(env_state, model_cfg.image_size)
    ids_b = jnp.broadcast_to(jnp.asarray(ids), (states, ids.shape[-1]))
    mask_b = jnp.broadcast_to(jnp.asarray(mask), (states, mask.shape[-1]))
    outs = [
        act(state.policy_params, state.critic, images, ids_b, mask_b, jax.random.PRNGKey(k), 1.0)
        for k in range(samples)
    ]
    u_all = np.stack([np.asarray(o["entropies"]).mean(-1) for o in outs])  # [samples, states]
    values = np.stack([np.asarray(o["value"]) for o in outs])
    h_first = np.stack([np.asarray(o["entropies"][:, 0]) for o in outs])
    return {
        "tokens": tokens,
        "seed": seed,
        "return_first4": float(np.mean(returns[:4])),
        "return_last6": float(np.mean(returns[-6:])),
        "explained_variance_last6": float(np.mean(explained[-6:])),
        "u_all_action_share": float(u_all.var(axis=0).mean() / u_all.var()),
        "h1_action_share": float(h_first.var(axis=0).mean() / max(h_first.var(), 1e-30)),
        # the trained critic's V (its own descriptor) when only the sampled action changes
        "value_std_within_state": float(values.std(axis=0).mean()),
        "value_std_across_states": float(values.mean(axis=0).std()),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--iterations", type=int, default=24)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for tokens in ("all", "first"):  # alternated, so machine load falls on both alike
            rows.append(run(tokens, seed, args.iterations))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
