"""Does the PPO update score the actions the sampler took? Runs one RL iteration of the CPU
experiment from an SFT checkpoint and, before the update, recomputes every stored action's
token log-probs the way the update does (stored image, prompt and tokens) and compares them
with the log-probs the sampler recorded. A misaligned buffer (an image or a prompt one step
off) shows up as a large difference.

    ./run.sh python experiments/diagnostics/rollout_alignment.py SFT_CHECKPOINT WORKDIR [NUM_ENVS]
"""

import sys

import jax
import numpy as np
from probe import run_with_probe  # before rl2vla_jax: it puts the repo root on sys.path

from rl2vla_jax.train import update as update_lib


def _report(recomputed, recorded):
    diff = np.abs(np.asarray(recomputed) - np.asarray(recorded))
    print(
        f"[alignment] {diff.shape[0]} samples: max |recomputed - recorded| token log-prob {diff.max():.2e}, "
        f"mean {diff.mean():.2e} (mean recorded token log-prob {np.mean(recorded):.3f})",
        flush=True,
    )


def _compare_log_probs(hp, model_cfg, critic, state, batch):
    T, B = batch.tokens.shape[:2]
    flat = {
        name: getattr(batch, name).reshape((T * B,) + getattr(batch, name).shape[2:])
        for name in ("images", "prompt_ids", "prompt_mask", "tokens")
    }
    recomputed, *_ = update_lib.evaluate_actions(
        hp, model_cfg, critic, state.policy_params, state.critic, flat
    )
    jax.debug.callback(_report, recomputed, batch.token_log_probs.reshape(T * B, -1))


if __name__ == "__main__":
    sft_checkpoint, workdir, *envs = sys.argv[1:]
    run_with_probe(_compare_log_probs, sft_checkpoint, workdir, int(envs[0]) if envs else 2, 1)
