"""Is the update's direction what lowers success, or does any step away from the SFT policy lower
it? The CPU experiment's RL run from an SFT checkpoint with every policy advantage negated (the
critic still learns the true returns): each update then lowers the probability of what the
successful episodes did. Iteration 0 rolls out the same episodes as the unreversed run with the
same config and seed, so the two runs' success curves compare pair by pair. If the reversed run's
success also falls, steps of this size hurt whatever their sign; if it rises, the update's sign
is wrong on the simulator path.

    ./run.sh python experiments/diagnostics/reversed_advantages.py SFT_CHECKPOINT WORKDIR NUM_ENVS ITERATIONS [key=value ...]

(key=value: dotted config overrides, e.g. rollout.episodes_per_env=4 optim.actor_lr=3e-4; the
run's summary.csv holds the rollout success per iteration. It writes no per-sample records.)
"""

import ast
import sys

from probe import run_with_probe  # before rl2vla_jax: it puts the repo root on sys.path

from rl2vla_jax.train import update as update_lib


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string, e.g. algorithm=grpo_s


def main(sft_checkpoint: str, workdir: str, num_envs: str, iterations: str, *overrides: str) -> None:
    true_advantages = update_lib.compute_advantages

    def reversed_advantages(hp, rollout):
        advantages, returns = true_advantages(hp, rollout)
        return -advantages, returns  # the value targets (returns) stay the true ones

    update_lib.compute_advantages = reversed_advantages  # update() looks it up when traced
    changes = {k: _value(v) for k, v in (o.split("=", 1) for o in overrides)}
    run_with_probe(lambda *args: None, sft_checkpoint, workdir, int(num_envs), int(iterations), **changes)


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
