"""Sequential vs pipelined rollouts on the CPU simulator (issue 14, item 3), alternated in one run.

    ./run.sh python benchmarks/rollout_speed.py --json=PATH [--preset=small] [--envs=4] [--groups=2]
        [--steps=10] [--image_size=64] [--repeats=3] [--llm_layers=N]

Each repeat times one recorded `run_episodes` of `--envs` envs for `--steps` steps (what an RL
iteration's rollout does: reset, act, step, bootstrap value) with pipeline_groups=1 and with
`--groups`, in alternating order, after one untimed warm-up of each (compiles). The policy is a random model of
`--preset` with a FiLM-EVI critic, at the CPU experiment's camera (64 px, close, narrow layout);
`--llm_layers` deepens its LLM so that the policy's time per step can match the simulator's
(pipelining can at best hide the smaller of the two behind the larger).
`simulator_s_per_step` is the wall time of one `env.step` of every env (timed apart, random
small actions), `policy_s_per_step` the act step's per call in the sequential runs. The JSON
also says whether both variants drew the same tokens.
"""

import argparse
import dataclasses
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root: `configs`

from configs import film_evi  # noqa: E402
from rl2vla_jax import files  # noqa: E402
from rl2vla_jax.data.prompt import load_tokenizer, tiny_tokenizer  # noqa: E402
from rl2vla_jax.models.init import init_params  # noqa: E402
from rl2vla_jax.policy import episodes as episodes_lib  # noqa: E402
from rl2vla_jax.policy import loading  # noqa: E402
from rl2vla_jax.policy.act import make_act  # noqa: E402
from rl2vla_jax.policy.actions import ActionDecoder  # noqa: E402
from rl2vla_jax.train import builders, hparams  # noqa: E402


def build(args):
    """A random policy + critic acting on a CPU vector env of `args.envs` workers."""
    from rl2vla_jax.envs import make_vector_env
    from rl2vla_jax.envs.actions import FULL_RANGE_ACTION_STATS

    config = film_evi.get_config("experiment")
    config.model.preset = args.preset
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
    if args.llm_layers:  # a deeper LLM: the policy's cost per step, without touching the simulator's
        model_cfg = model_cfg.replace(llm=dataclasses.replace(model_cfg.llm, num_layers=args.llm_layers))
    critic = builders.make_critic(hp, config)
    params = init_params(model_cfg, jax.random.PRNGKey(0), **loading.random_init_options(config))
    critic_params = builders.init_critic_params(
        critic, model_cfg.llm.hidden_size, jax.random.PRNGKey(1), True
    )
    env = make_vector_env(
        "train",
        args.envs,
        backend="cpu",
        image_size=args.image_size,
        max_episode_steps=args.steps,
        env_options={"camera": config.env.camera, "layout": config.env.layout},
    )
    actor = episodes_lib.Actor(
        env,
        make_act(model_cfg, critic, hp.descriptor_mode, hp.descriptor_tokens),
        load_tokenizer(tiny_tokenizer()),
        ActionDecoder(model_cfg, FULL_RANGE_ACTION_STATS),
        model_cfg.image_size,
        config.model.max_prompt_tokens,
        model_cfg.llm.vocab_size,
    )
    return actor, params, critic_params, model_cfg


def time_simulator(env, steps: int) -> float:
    """Seconds per batched step of every env at once (what a sequential rollout waits for),
    with random actions near the hold pose."""
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    started = time.perf_counter()
    for _ in range(steps):
        env.step(rng.uniform(-0.02, 0.02, size=(env.num_envs, 7)).astype(np.float32))
    return (time.perf_counter() - started) / steps


def rollout(actor, params, critic_params, groups: int, seed: int):
    started = time.perf_counter()
    episodes = episodes_lib.run_episodes(
        dataclasses.replace(actor, pipeline_groups=groups),
        params,
        critic_params,
        seed,
        jax.random.PRNGKey(seed),
        1.0,
        record=True,
    )
    return time.perf_counter() - started, episodes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True)
    parser.add_argument("--preset", default="small", choices=("tiny", "small"))
    parser.add_argument("--envs", type=int, default=4)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--llm_layers", type=int, default=0, help="0: the preset's")
    args = parser.parse_args()
    if args.groups < 2 or args.envs % args.groups:
        parser.error(f"--groups={args.groups} must be >= 2 and divide --envs={args.envs}")
    load_before = os.getloadavg()
    actor, params, critic_params, model_cfg = build(args)
    times = {1: [], args.groups: []}
    seconds = {1: [], args.groups: []}
    same_tokens = True
    try:
        for groups in times:  # warm-up: compiles the act step at both batch sizes
            rollout(actor, params, critic_params, groups, seed=0)
        simulator_s_per_step = time_simulator(actor.env, args.steps)
        for repeat in range(args.repeats):
            tokens = {}
            # Alternated (the order too, against drift in the machine's load); same seed: the
            # same episodes both ways.
            for groups in list(times)[:: 1 if repeat % 2 == 0 else -1]:
                wall, episodes = rollout(actor, params, critic_params, groups, seed=1 + repeat)
                times[groups].append(wall)
                seconds[groups].append(episodes.seconds)
                tokens[groups] = episodes.steps["tokens"]
            same_tokens &= bool(np.array_equal(tokens[1], tokens[args.groups]))
    finally:
        actor.env.close()
    sequential, pipelined = times[1], times[args.groups]
    steps = args.steps
    report = {
        "pipelined_speedup": float(np.median(sequential) / np.median(pipelined)),
        "sequential_s": sequential,
        "pipelined_s": pipelined,
        "simulator_s_per_step": simulator_s_per_step,
        "policy_s_per_step": float(np.median([s["policy"] for s in seconds[1]]) / (steps + 1)),
        # The pipelined runs' time waiting for workers (the reset included): what was not hidden.
        "pipelined_simulator_wait_s": [s["simulator"] for s in seconds[args.groups]],
        "sequential_simulator_s": [s["simulator"] for s in seconds[1]],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "load_average_before": [round(x, 2) for x in load_before],
        "cpu_count": os.cpu_count(),
        "tokens_identical": same_tokens,
        "preset": args.preset,
        "envs": args.envs,
        "groups": args.groups,
        "steps": steps,
        "image_size": args.image_size,
        "llm_layers": model_cfg.llm.num_layers,
        "repeats": args.repeats,
    }
    files.write_json(args.json, report)
    print(
        f"pipelined x{report['pipelined_speedup']:.2f}: sequential {np.median(sequential):.2f} s, "
        f"pipelined {np.median(pipelined):.2f} s ({args.envs} envs, {args.groups} groups, {steps} steps); "
        f"simulator {report['simulator_s_per_step']:.3f} s/step, policy {report['policy_s_per_step']:.3f} s/step; "
        f"load average {report['load_average']}",
        flush=True,
    )


if __name__ == "__main__":
    main()
