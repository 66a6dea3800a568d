"""Which initial states the policies fail on. Evaluations of `python -m rl2vla_jax.eval` with the
same seeds play the same initial states (the episode seed decides the layout), so several
evaluations, of one policy or of many, give each initial state a success count. This prints:

- how many states succeed in k of the N evaluations, beside what N independent draws at the pooled
  rate would give (a wider spread than that means the states, not chance, decide outcomes);
- the success and ever-grasped rates by target object, and by the object's distance from the
  layout's centre, each state read back from the simulator by resetting it with its seed.

    ./run.sh python experiments/diagnostics/hard_states.py [--setting=train] EVAL [EVAL ...]
"""

import collections
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repository, for rl2vla_jax
sys.path.insert(0, HERE)  # for failure_modes, also when this file is loaded by path (the tests)
from failure_modes import OUTCOMES, outcome, read_setting, setting_and_folders  # noqa: E402


def load_outcomes(eval_dirs: list[str], setting: str) -> dict[int, list[tuple[bool, bool]]]:
    """Episode seed -> (success, ever grasped) per evaluation, for the seeds every evaluation played."""
    per_eval = []
    for d in eval_dirs:
        played = {}
        for episodes in read_setting(d, setting).values():
            for seed, *flags in zip(
                episodes["episode_seed"], episodes["success"], episodes["success_once"], episodes["return"]
            ):
                how = outcome(*flags)
                played[int(seed)] = (how == OUTCOMES[-1], how != OUTCOMES[0])
        per_eval.append(played)
    shared = sorted(set.intersection(*(set(p) for p in per_eval)))
    if not shared:
        sys.exit("error: the evaluations share no episode seed; pass evaluations run with the same --seeds")
    return {s: [p[s] for p in per_eval] for s in shared}


def spread_table(outcomes: dict[int, list[tuple[bool, bool]]]) -> str:
    """States by the number of evaluations that succeed on them, against independent draws."""
    n = len(next(iter(outcomes.values())))
    counts = collections.Counter(sum(s for s, _ in v) for v in outcomes.values())
    p = sum(counts[k] * k for k in counts) / (n * len(outcomes))
    lines = [
        f"pooled success {p:.1%} over {len(outcomes)} states x {n} evaluations",
        "| evaluations succeeding | states | if independent at the pooled rate |",
        "|---|---|---|",
    ]
    for k in range(n + 1):
        expected = len(outcomes) * math.comb(n, k) * p**k * (1 - p) ** (n - k)
        lines.append(f"| {k} of {n} | {counts[k]} | {expected:.1f} |")
    return "\n".join(lines)


def group_table(outcomes: dict[int, list[tuple[bool, bool]]], groups: dict[int, str], title: str) -> str:
    """Success and ever-grasped rates over all evaluations' episodes, per group of states."""
    pooled = collections.defaultdict(list)
    for seed, v in outcomes.items():
        pooled[groups[seed]] += v
    lines = [f"| {title} | states | success | grasped |", "|---|---|---|---|"]
    n = len(next(iter(outcomes.values())))
    for name in sorted(pooled, key=lambda g: sum(s for s, _ in pooled[g]) / len(pooled[g])):
        v = pooled[name]
        success = sum(s for s, _ in v) / len(v)
        grasped = sum(g for _, g in v) / len(v)
        lines.append(f"| {name} | {len(v) // n} | {success:.1%} | {grasped:.1%} |")
    return "\n".join(lines)


def distance_band(object_xy, centre, width_cm: float = 1.0) -> str:
    d = 100 * math.hypot(object_xy[0] - centre[0], object_xy[1] - centre[1])
    low = width_cm * math.floor(d / width_cm)
    return f"{low:.0f}-{low + width_cm:.0f} cm"


def read_plans(seeds: list[int], setting: str, layout: str) -> dict[int, dict]:
    """Each seed's initial state, by resetting one simulator env with it (no step is played)."""
    from rl2vla_jax.envs import put_on_plate
    from rl2vla_jax.envs.cpu_worker import make_single_env
    from rl2vla_jax.envs.suites import get_setting

    env = make_single_env(get_setting("ours", setting).env_id, 64, 1, env_options=dict(layout=layout))
    task = env.unwrapped
    plans = {}
    for seed in seeds:
        env.reset(seed=seed)
        plan = task.episode_plans[0]
        plans[seed] = {
            "object": task.all_object_kinds[plan["target"]].name,
            "distance": distance_band(plan["object_xy"][0], put_on_plate.WORKSPACE_CENTRE),
        }
    env.close()
    return plans


def main(argv: list[str]) -> None:
    setting, eval_dirs = setting_and_folders(argv, __doc__)
    outcomes = load_outcomes(eval_dirs, setting)
    layouts = set()
    for d in eval_dirs:
        with open(os.path.join(d, "evaluation.json")) as f:
            layouts.add(json.load(f).get("layout", "full"))
    if len(layouts) != 1:
        sys.exit(
            f"error: the evaluations ran different layouts {sorted(layouts)}; pass evaluations of one layout"
        )
    plans = read_plans(list(outcomes), setting, layouts.pop())
    print(spread_table(outcomes))
    print()
    print(group_table(outcomes, {s: p["object"] for s, p in plans.items()}, "target object"))
    print()
    print(
        group_table(outcomes, {s: p["distance"] for s, p in plans.items()}, "object from the layout centre")
    )


if __name__ == "__main__":
    main(sys.argv[1:])
