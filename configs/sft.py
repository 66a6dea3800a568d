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

from configs import default


def get_config(arg: str | None = None):
    presets = default.parse_presets(arg)
    c = default.apply_presets(default.base_config(), presets)
    c.name = "sft"
    c.data_dir = "demos/train"
    c.val_fraction = 0.1  # of episodes, held out for validation loss and token accuracy
    c.env.image_size = 64  # camera resolution of collected demos (the tiny model reads 28 px)
    c.sft = default.ml_collections.ConfigDict()
    c.sft.learning_rate = 3e-3  # the tiny random model; `:paper` uses OpenVLA's 5e-4
    c.sft.batch_size = 8
    c.sft.steps = 200
    c.sft.eval_every = 50  # also the interval of training-metric logs
    c.sft.checkpoint_every = 100  # <workdir>/checkpoints/<step>; the last 3 are kept
    c.sft.eval_batch_size = 16
    c.sft.val_max_examples = 512  # validation steps kept in memory (evenly spaced over held-out episodes)
    # True: every parameter trains (not only config.trainable, the LoRA factors); for the tiny
    # random model, whose frozen random base LoRA alone adapts slowly. The checkpoint then holds
    # the fine-tuned base and LoRA factors; RL continues with config.trainable as usual.
    c.sft.train_all_params = False
    c.sft.augment = False  # random resized crop + colour jitter, as OpenVLA's image_aug
    c.sft.num_threads = 4  # grain reader threads (decode, augment, tokenise ahead of the device)
    c.sft.num_workers = 0  # grain worker processes on top of the threads (0 = none)
    c.collect = default.ml_collections.ConfigDict()
    c.collect.num_episodes = 50
    c.collect.num_workers = 2
    if "paper" in presets:
        c.lora.rank, c.lora.alpha = 32, 16.0
        c.env.image_size = 224
        c.sft.learning_rate = 5e-4
        c.sft.batch_size = 16
        c.sft.steps = 20000
        c.sft.eval_every = 1000
        c.sft.checkpoint_every = 5000
        c.sft.eval_batch_size = 16
        c.sft.val_max_examples = 4096
        c.sft.augment = True
        c.sft.num_threads = 16
        c.sft.num_workers = 4
        c.env.max_episode_steps = 80
        c.collect.num_episodes = 16000
    c.lock()
    return c
