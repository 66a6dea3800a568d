"""PPO without EVI: the RL4VLA critic on the hidden state alone.

Run:       python -m rl2vla_jax.train --config=configs/ppo_no_evi.py [--workdir=runs/ppo_no_evi]
Hardware:  bare file = embedded CPU default (tiny random OpenVLA, 2 CPU simulator workers,
           20-step episodes, 3 iterations; minutes on a 2-core laptop).
           `:paper` = OpenVLA-7B, RL4VLA recipe, sized for one 80 GB GPU (H100/A100);
           `--config.init_from=runs/warmup` continues the warm-up's LoRA, as RL4VLA's
           --vla_load_path does. `:paper,scratch` = RL4VLA's "PPO from scratch" (no
           --vla_load_path): OpenVLA-7B as converted (runs/openvla-7b) with a fresh LoRA.
Expect:    CPU default: the loop runs end to end, prints a summary table and writes a checkpoint
           and TensorBoard events; success stays near 0 (random tiny policy). `:paper`: ID
           success rising from the SFT level over ~300 iterations (RL4VLA reports 93.8% PPO).
"""

from rl2vla_jax import config_base


def get_config(arg: str | None = None):
    arg = config_base.parse_arg(arg, scratch=False, **config_base.PRESET_ARGS)
    c = config_base.rl(arg)
    c.name = "ppo_no_evi"
    c.critic.name = "value_head"
    if arg.scratch:
        c.name = "ppo_scratch"
        # The tiny CPU model starts random anyway; at 7B, scratch = the converted base.
        c.init_from = config_base.OPENVLA_7B_DIR if arg.paper else ""
    return config_base.locked(c)
