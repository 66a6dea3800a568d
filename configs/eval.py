"""Evaluation of a checkpoint on every setting of an OOD suite (RL4VLA's table layout).

Run:       python -m rl2vla_jax.eval --config=configs/eval.py --checkpoint=DIR [--suite=ours|rl4vla]
             [--settings=a,b] [--seeds=0,1,2] [--episodes=N] [--compare=DIR] [--out=DIR]
Hardware:  bare file = CPU simulator (2 worker processes), 64 px camera, 30-step episodes,
           1 seed x 2 episodes per setting: the 17 settings of "ours" in minutes on 2 cores;
           `:paper` = RL4VLA's protocol: 3 seeds x 64 episodes of 80 steps per setting, 224 px,
           64 envs on a GPU.
Expect:    a results folder with per setting x seed success / success_once / return, a summary
           (CSV + Markdown, mean and 95% CI per setting and category, RL4VLA's layout), a bar
           plot and videos; the same command resumes an interrupted evaluation.
"""

from configs import default


def get_config(arg: str | None = None):
    presets = default.parse_presets(arg)
    c = default.apply_presets(default.base_config(), presets)
    c.name = "eval"
    # The scripted expert needs ~15 steps for the task; 30 leaves a policy room for mistakes.
    c.env.max_episode_steps = 30
    c.env.image_size = 64  # the tiny model reads 28 px; 64 keeps videos watchable
    c.eval = default.ml_collections.ConfigDict()
    c.eval.temperature = 0.6  # RL4VLA evaluates with sampling at 0.6
    c.eval.seeds = (0,)
    c.eval.episodes = 2
    c.eval.videos_per_setting = 1
    if "paper" in presets:
        c.env.max_episode_steps = 80
        c.env.image_size = 224
        c.eval.seeds = (0, 1, 2)
        c.eval.episodes = 64
        c.eval.videos_per_setting = 2
    c.lock()
    return c
