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

from rl2vla_jax import config_base


def get_config(arg: str | None = None):
    return config_base.locked(config_base.evaluation(config_base.parse_arg(arg, **config_base.PRESET_ARGS)))
