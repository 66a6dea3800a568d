"""RL2VLA's method: FiLM Entropy-aware Value Injection (gamma, beta = MLP(H)).

Run:       python -m rl2vla_jax.train --config=configs/film_evi.py [--workdir=runs/film_evi]
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
    c.name = "film_evi"
    c.critic.name = "film_evi"
    return config_base.locked(c)
