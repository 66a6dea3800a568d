"""Supervised warm-up (behaviour cloning) of the VLA on scripted-expert demonstrations.

Collect:   python -m rl2vla_jax.collect_demos --config=configs/sft.py --num_episodes=N --out=demos/train
Run:       python -m rl2vla_jax.sft --config=configs/sft.py [--workdir=runs/sft]
Hardware:  bare file = tiny random OpenVLA on CPU, 64 px camera (minutes on 2 cores);
           `:paper` = OpenVLA-7B (`--config.init_from=` a converted checkpoint), LoRA
           r32/alpha16, lr 5e-4 (OpenVLA's fine-tuning recipe), 224 px, on one or more 80 GB GPUs.
Expect:    held-out action-token accuracy far above chance (1/256); every checkpoint
           (<workdir>/checkpoints/<step>) is a valid `init_from` for `python -m rl2vla_jax.train`
           and a `--checkpoint` for `python -m rl2vla_jax.eval`.
"""

from rl2vla_jax import config_base


def get_config(arg: str | None = None):
    return config_base.locked(config_base.sft(config_base.parse_arg(arg, **config_base.PRESET_ARGS)))
