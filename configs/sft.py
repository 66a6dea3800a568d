"""Supervised warm-up (behaviour cloning) of the VLA on scripted-expert demonstrations.

Collect:   python -m rl2vla_jax.collect_demos --config=configs/sft.py --num_episodes=N --out=demos/train
Run:       python -m rl2vla_jax.sft --config=configs/sft.py [--workdir=runs/sft]
Hardware:  bare file = tiny random OpenVLA on CPU, 64 px camera (minutes on 2 cores);
           `:paper_warmup` and `:paper` = RL4VLA's two stages on OpenVLA-7B (LoRA r32/alpha16,
           lr 5e-4, global batch 32 = its 4 GPUs x 8, 224 px), on one or more 80 GB GPUs:
             python -m rl2vla_jax.convert_openvla --hf_dir=openvla-7b --out=runs/openvla-7b
             python -m rl2vla_jax.collect_demos --config=configs/sft.py:paper_warmup --out=demos/warmup
             python -m rl2vla_jax.sft --config=configs/sft.py:paper_warmup --workdir=runs/warmup
             python -m rl2vla_jax.merge_lora --checkpoint=runs/warmup --out=runs/warmup_merged
             python -m rl2vla_jax.collect_demos --config=configs/sft.py:paper --out=demos/train
             python -m rl2vla_jax.sft --config=configs/sft.py:paper --workdir=runs/sft
           warm-up: motion-planner demos, 2000 steps, image augmentation on, from OpenVLA-7B;
           SFT: 60000 steps, augmentation off, a fresh LoRA on the merged warm-up (README of
           gen-robot/RL4VLA, "Warm-up OpenVLA" and "SFT").
Expect:    held-out action-token accuracy far above chance (1/256); every checkpoint
           (<workdir>/checkpoints/<step>) is a valid `init_from` for `python -m rl2vla_jax.train`
           and a `--checkpoint` for `python -m rl2vla_jax.eval`.
"""

import ml_collections

from rl2vla_jax import config_base
from rl2vla_jax.validation import CONFIG_PRESETS, ConfigError


def get_config(arg: str | None = None):
    arg = config_base.parse_arg(arg, paper_warmup=False, **config_base.PRESET_ARGS)
    if not arg.paper_warmup:
        return config_base.locked(config_base.sft(arg))
    others = [name for name in CONFIG_PRESETS if arg[name]]
    if others:
        raise ConfigError(f"config presets paper_warmup and {others[0]} exclude each other; choose one")
    c = config_base.sft(ml_collections.FrozenConfigDict({**arg.to_dict(), "paper": True}))
    c.name = "sft_warmup"
    c.init_from = config_base.OPENVLA_7B_DIR
    c.data_dir = "demos/warmup"  # the scripted expert: our motion planner
    c.sft.steps = 2000
    c.sft.eval_every = 50
    c.sft.checkpoint_every = 500
    c.sft.augment = True
    c.collect.num_episodes = 75  # RL4VLA's collect_simpler --num_traj 75 for the warm-up
    return config_base.locked(c)
