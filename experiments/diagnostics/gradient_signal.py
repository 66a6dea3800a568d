"""How much of a rollout's policy gradient is signal? From an SFT checkpoint, with the actor's
learning rate at 0 (every iteration rolls out the same policy), each iteration's PPO gradient at
ratio 1 (the mean of -A * grad log pi, advantages normalised as the update does) is taken on two
disjoint random halves of the episodes, for SPLITS random splits (drawn once, when the update
is traced: the same splits every iteration, on new episodes). For independent halves of n episodes,
cos(g1, g2) ~ n*rho / (n*rho + 1), with rho = |signal|^2 / (the noise variance one env's episode
adds): a cosine near 0 means the update follows noise.

    ./run.sh python experiments/diagnostics/gradient_signal.py SFT_CHECKPOINT WORKDIR NUM_ENVS ITERATIONS \
        [EPISODES_PER_ENV]

With EPISODES_PER_ENV = k (default 1) each env plays k episodes per iteration, so each half holds
k * NUM_ENVS / 2 episodes.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
from probe import run_with_probe  # before rl2vla_jax: it puts the repo root on sys.path

from rl2vla_jax.models.trainable import merge
from rl2vla_jax.rl import advantages as adv_lib
from rl2vla_jax.train import update as update_lib

USAGE = "gradient_signal.py SFT_CHECKPOINT WORKDIR NUM_ENVS ITERATIONS [EPISODES_PER_ENV]"
SPLITS = 4
CHUNK = 40  # samples per gradient evaluation (the whole half at once does not fit in memory)


def _report(cosines, norms):
    cosines = np.asarray(cosines)
    print(
        f"[signal] cos(g_half1, g_half2) per split {np.round(cosines, 3)}; mean {cosines.mean():.3f}; "
        f"|g_half| {np.round(np.asarray(norms), 3)}",
        flush=True,
    )


def _measure(hp, model_cfg, critic, state, batch):
    T, B = batch.tokens.shape[:2]
    raw, _ = update_lib.compute_advantages(hp, batch)
    advantages = adv_lib.normalize(raw, batch.valid.astype(jnp.float32)) if hp.normalize_advantages else raw

    def chunk_loss(trainable, chunk):
        policy = merge(trainable, state.frozen)
        token_log_probs, *_ = update_lib.evaluate_actions(hp, model_cfg, critic, policy, state.critic, chunk)
        return -jnp.sum(chunk["advantages"] * token_log_probs.sum(-1))

    def mean_gradient(envs):
        def chunks(x):
            return x[:, envs].reshape((-1, CHUNK) + x.shape[2:])

        data = {
            name: chunks(getattr(batch, name)) for name in ("images", "prompt_ids", "prompt_mask", "tokens")
        }
        data["advantages"] = chunks(advantages)

        def add(total, chunk):
            return jax.tree.map(jnp.add, total, jax.grad(chunk_loss)(state.trainable, chunk)), None

        total, _ = jax.lax.scan(add, jax.tree.map(jnp.zeros_like, state.trainable), data)
        return jnp.concatenate([g.ravel() / (T * len(envs)) for g in jax.tree.leaves(total)])

    cosines, norms = [], []
    rng = np.random.default_rng(0)
    for _ in range(SPLITS):
        order = rng.permutation(B)
        g1, g2 = mean_gradient(order[: B // 2]), mean_gradient(order[B // 2 :])
        cosines.append(jnp.dot(g1, g2) / (jnp.linalg.norm(g1) * jnp.linalg.norm(g2)))
        norms += [jnp.linalg.norm(g1), jnp.linalg.norm(g2)]
    jax.debug.callback(_report, jnp.stack(cosines), jnp.stack(norms))


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        raise SystemExit(f"usage: {USAGE}")
    sft_checkpoint, workdir = sys.argv[1], sys.argv[2]
    num_envs, iterations = int(sys.argv[3]), int(sys.argv[4])
    per_env = int(sys.argv[5]) if len(sys.argv) == 6 else 1
    episodes = num_envs * per_env
    if episodes % 2 or episodes // 2 * 40 % CHUNK:  # the experiment's 40-step episodes
        raise SystemExit(
            f"error: NUM_ENVS x EPISODES_PER_ENV={episodes} must be even, with half the episodes' "
            f"samples a multiple of {CHUNK}"
        )
    # Actor lr 0: every iteration rolls out the same policy. 160 x EPISODES_PER_ENV samples per
    # Adam step (exp18's 160 at one episode per env; the critic's steps, the actor does not move).
    run_with_probe(
        _measure, sft_checkpoint, workdir, num_envs, iterations,
        **{"optim.actor_lr": 0.0, "ppo.grad_accum_steps": 4 * per_env, "rollout.episodes_per_env": per_env},
    )  # fmt: skip
