"""The harness both diagnostics share: run RL iterations of the CPU experiment from an SFT
checkpoint with a probe that sees every rollout batch (and the state it will update) just
before the real update runs on it."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from configs import film_evi  # noqa: E402
from rl2vla_jax.train import loop  # noqa: E402
from rl2vla_jax.train import update as update_lib  # noqa: E402


def run_with_probe(
    probe, sft_checkpoint: str, workdir: str, num_envs: int, iterations: int, **changes
) -> None:
    """`probe(hp, model_cfg, critic, state, batch)` runs inside the jitted update (report
    through jax.debug.callback); `changes` are dotted config overrides ("optim.actor_lr": 0.0)."""
    update = update_lib.update

    def probed(hp, model_cfg, critic, actor_tx, critic_tx, max_norm, state, batch):
        probe(hp, model_cfg, critic, state, batch)
        return update(hp, model_cfg, critic, actor_tx, critic_tx, max_norm, state, batch)

    update_lib.update = probed  # loop.train looks it up when it builds its jitted update
    config = film_evi.get_config("experiment")
    config.init_from = sft_checkpoint
    config.env.num_envs, config.train.iterations = num_envs, iterations
    config.train.checkpoint_every, config.train.diagnostics_every = iterations, 0
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        config[section][key] = value
    loop.train(config, workdir)
