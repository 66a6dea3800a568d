"""Does the PPO update score the actions the sampler took? Runs one RL iteration of the CPU
experiment from an SFT checkpoint and, before the update, recomputes every stored action's
token log-probs the way the update does (stored image, prompt and tokens) and compares them
with the log-probs the sampler recorded. A misaligned buffer (an image or a prompt one step
off) shows up as a large difference.

    ./run.sh python experiments/diagnostics/rollout_alignment.py SFT_CHECKPOINT WORKDIR [NUM_ENVS]
"""

import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from configs import film_evi  # noqa: E402
from rl2vla_jax.train import loop  # noqa: E402
from rl2vla_jax.train import update as update_lib  # noqa: E402

_update = update_lib.update


def _report(recomputed, recorded):
    diff = np.abs(np.asarray(recomputed) - np.asarray(recorded))
    print(
        f"[alignment] {diff.shape[0]} samples: max |recomputed - recorded| token log-prob {diff.max():.2e}, "
        f"mean {diff.mean():.2e} (mean recorded token log-prob {np.mean(recorded):.3f})",
        flush=True,
    )


def _checked_update(hp, model_cfg, critic, actor_tx, critic_tx, max_norm, state, batch):
    T, B = batch.tokens.shape[:2]
    flat = {
        name: getattr(batch, name).reshape((T * B,) + getattr(batch, name).shape[2:])
        for name in ("images", "prompt_ids", "prompt_mask", "tokens")
    }
    recomputed, *_ = update_lib.evaluate_actions(
        hp, model_cfg, critic, state.policy_params, state.critic, flat
    )
    jax.debug.callback(_report, recomputed, batch.token_log_probs.reshape(T * B, -1))
    return _update(hp, model_cfg, critic, actor_tx, critic_tx, max_norm, state, batch)


def main(sft_checkpoint: str, workdir: str, num_envs: int = 2) -> None:
    update_lib.update = _checked_update
    config = film_evi.get_config("experiment")
    config.init_from = sft_checkpoint
    config.env.num_envs, config.train.iterations, config.train.checkpoint_every = num_envs, 1, 1
    config.train.diagnostics_every = 0
    loop.train(config, workdir)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:]))
