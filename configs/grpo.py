"""GRPO: no critic; undiscounted reward-to-go standardised within groups of envs.

Run:       python -m rl2vla_jax.train --config=configs/grpo.py            (groups of 2 envs)
           python -m rl2vla_jax.train --config=configs/grpo.py:same_state  RL4VLA's "GRPO (s)":
           every env of a group starts from the same initial state (same episode seed).
Hardware:  bare file = embedded CPU default; `:paper` = OpenVLA-7B on one 80 GB GPU.
Expect:    CPU default runs end to end with a summary table; `:paper` per RL4VLA, GRPO trails PPO.
"""

from configs import default


def get_config(arg: str | None = None):
    names = [n.strip() for n in (arg or "").split(",") if n.strip()]
    same_state = "same_state" in names
    presets = ",".join(n for n in names if n != "same_state")
    try:
        c = default.apply_presets(default.base_config(), default.parse_presets(presets))
    except ValueError as err:
        raise ValueError(f"{err}, same_state") from None
    c.name = "grpo_s" if same_state else "grpo"
    c.algorithm = "grpo_s" if same_state else "grpo"
    c.critic.name = "value_head"  # unused: GRPO has no critic
    if "paper" in names:
        c.grpo_group_size = 8
    c.lock()
    return c
