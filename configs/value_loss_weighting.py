"""Ablation: plain critic, value loss weighted by (1 + c*H).

Run:       python -m rl2vla_jax.train --config=configs/value_loss_weighting.py [--workdir=runs/value_loss_weighting]
Hardware:  bare file = embedded CPU default (tiny random OpenVLA, 2 CPU simulator workers,
           20-step episodes, 3 iterations; minutes on a 2-core laptop).
           `:paper` = OpenVLA-7B, RL4VLA recipe, sized for one 80 GB GPU (H100/A100).
Expect:    CPU default: the loop runs end to end, prints a summary table and writes a checkpoint
           and TensorBoard events; success stays near 0 (random tiny policy). `:paper`: ID
           success rising from the SFT level over ~300 iterations (RL4VLA reports 93.8% PPO).
"""

from rl2vla_jax import config_base


def get_config(arg: str | None = None):
    c = config_base.rl(config_base.parse_arg(arg, **config_base.PRESET_ARGS))
    c.name = "value_loss_weighting"
    c.critic.name = "value_head"
    c.ppo.value_loss_entropy_coef = 0.5
    return config_base.locked(c)
