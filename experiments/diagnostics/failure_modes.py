"""How the episodes of an evaluation end, from RL4VLA's potential: an episode's return is its
last potential P_T = 0.1 ever grasped + 0.1 grasped 5 steps in a row + 1.0 placed after a grasp
(P_0 = 0), so the return and the two success flags say how far each episode got. One column per
evaluation folder (`python -m rl2vla_jax.eval --out=...`), one setting of each:

    ./run.sh python experiments/diagnostics/failure_modes.py [--setting=train] EVAL [EVAL ...]

Evaluations of `python -m rl2vla_jax.eval` report RL4VLA's reward whatever a policy was trained
with (a shaped training reward, `env.reach_shaping`, is the training env's alone).
"""

import json
import os
import sys

OUTCOMES = (
    "never grasped",
    "grasped, held < 5 steps",
    "held >= 5 steps, never placed",
    "placed, then lost",
    "success at the last step",
)


def outcome(success: float, success_once: float, episode_return: float) -> str:
    if success:
        return OUTCOMES[4]
    if success_once:
        return OUTCOMES[3]
    level = round(episode_return * 10)  # the potential without a placement: 0, 0.1 or 0.2
    if level not in (0, 1, 2):
        raise ValueError(f"return {episode_return} is not a potential of an unplaced episode (0, 0.1, 0.2)")
    return OUTCOMES[level]


def read_setting(eval_dir: str, setting: str) -> dict[str, dict[str, list]]:
    """One setting's episodes from an evaluation folder: evaluation seed -> per-episode lists."""
    path = os.path.join(eval_dir, "settings", f"{setting}.json")
    if not os.path.isfile(path):
        sys.exit(
            f"error: {path} does not exist; pass evaluation folders (eval --out) that hold setting {setting!r}"
        )
    with open(path) as f:
        return json.load(f)["seeds"]


def setting_and_folders(argv: list[str], usage: str) -> tuple[str, list[str]]:
    """The diagnostics' command line: `[--setting=NAME] EVAL [EVAL ...]`, setting `train` by default."""
    setting = "train"
    if argv and argv[0].startswith("--setting="):
        setting, argv = argv[0].split("=", 1)[1], argv[1:]
    if not argv:
        sys.exit(usage)
    return setting, argv


def count_outcomes(eval_dir: str, setting: str) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for episodes in read_setting(eval_dir, setting).values():
        for s, once, r in zip(episodes["success"], episodes["success_once"], episodes["return"]):
            counts[outcome(s, once, r)] += 1
    return counts


def table(eval_dirs: list[str], setting: str) -> str:
    columns = [count_outcomes(d, setting) for d in eval_dirs]
    totals = [sum(c.values()) for c in columns]
    lines = ["| outcome | " + " | ".join(eval_dirs) + " |", "|---|" + "---|" * len(eval_dirs)]
    for name in OUTCOMES:
        cells = [f"{c[name]} ({c[name] / n:.1%})" for c, n in zip(columns, totals)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| episodes | " + " | ".join(str(n) for n in totals) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    setting, eval_dirs = setting_and_folders(argv, __doc__)
    print(table(eval_dirs, setting))


if __name__ == "__main__":
    main(sys.argv[1:])
