"""Evaluation of a checkpoint on every setting of an OOD suite (RL4VLA's table layout).

Run:       python -m rl2vla_jax.eval --config=configs/eval.py --checkpoint=DIR [--suite=ours|rl4vla]
             [--settings=a,b] [--seeds=0,1,2] [--episodes=N] [--compare=DIR]
Hardware:  bare file = CPU simulator, few episodes per setting (minutes on 2 cores);
           `:paper` = RL4VLA's protocol: 3 seeds x 64 episodes per setting on a GPU.
Expect:    a results folder with per setting x seed success / success_once / return, a summary
           (CSV + Markdown, mean and 95% CI per setting and category) and a bar plot.
"""

from configs import default


def get_config(arg: str | None = None):
    presets = default.parse_presets(arg)
    c = default.apply_presets(default.base_config(), presets)
    c.name = "eval"
    c.eval = default.ml_collections.ConfigDict()
    c.eval.temperature = 0.6  # RL4VLA evaluates with sampling at 0.6
    c.eval.seeds = (0,)
    c.eval.episodes = 2
    c.eval.videos_per_setting = 1
    if "paper" in presets:
        c.eval.seeds = (0, 1, 2)
        c.eval.episodes = 64
        c.eval.videos_per_setting = 2
    c.lock()
    return c
