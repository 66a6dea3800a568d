"""GRPO: no critic. Ours: undiscounted reward-to-go standardised within groups of envs.

Run:       python -m rl2vla_jax.train --config=configs/grpo.py            (groups of 2 envs)
           python -m rl2vla_jax.train --config=configs/grpo.py:same_state  "GRPO (s)": every env
           of a group starts from the same initial state (same episode seed).
Hardware:  bare file = embedded CPU default; `:paper` (or `:paper,same_state`) = OpenVLA-7B on
           one 80 GB GPU, as RL4VLA's train_ms3_ppo.py --alg_name=grpo: no group baseline, the
           per-step rewards standardised over the whole buffer (non-zero ones only, its
           --alg_grpo_fix default) and summed into reward-to-go, no further normalisation;
           `same_state` = its --use_same_init: ONE initial state for every env of an iteration.
Expect:    CPU default runs end to end with a summary table; `:paper` per RL4VLA, GRPO trails PPO.
"""

from rl2vla_jax import config_base


def get_config(arg: str | None = None):
    arg = config_base.parse_arg(arg, same_state=False, **config_base.PRESET_ARGS)
    c = config_base.rl(arg)
    c.name = c.algorithm = "grpo_s" if arg.same_state else "grpo"
    c.critic.name = "value_head"  # unused: GRPO has no critic
    if arg.paper:
        c.grpo_group_size = 8  # only for --config.grpo.advantage=group
        c.grpo.advantage = "buffer_rewards"
        c.grpo.nonzero_rewards_only = True
        c.grpo.same_init = "batch"
        c.ppo.normalize_advantages = False  # upstream's advantage is the reward-to-go itself
    return config_base.locked(c)
