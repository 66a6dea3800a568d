"""What EVI costs: parameters, compiled update memory and latency, FiLM-EVI vs the plain head.

Two arms that differ only in `critic.name` ("film_evi" vs "value_head"). At 7B nothing is
allocated: the state and the rollout are `jax.ShapeDtypeStruct`s (bf16 weights from the
`paper` preset) and the update is lowered and compiled ahead of time, so XLA's memory analysis
of the executable is read without running it. At CPU scale the arms are also timed, in
alternation so that load from other processes falls on both alike.
"""

from __future__ import annotations

import functools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from rl2vla_jax.policy import loading
from rl2vla_jax.policy.act import make_act
from rl2vla_jax.policy.episodes import Rollout
from rl2vla_jax.train import builders, hparams
from rl2vla_jax.train import update as update_lib
from rl2vla_jax.train.episode_plan import episodes_per_iteration

ARMS = {"with_evi": "film_evi", "without_evi": "value_head"}
# At 7B one optimizer step on one minibatch of RL4VLA's size is lowered (minibatch 8).
OPENVLA_7B_MINIBATCH = 8


def count(tree) -> int:
    return int(sum(np.prod(leaf.shape, dtype=np.int64) for leaf in jax.tree.leaves(tree)))


def arm_config(config, critic_name: str):
    """`config` with only the critic changed (an unlocked copy)."""
    arm = config.copy_and_resolve_references()
    arm.unlock()
    arm.critic.name = critic_name
    return arm


def abstract_rollout(model_cfg, horizon: int, num_envs: int, prompt_len: int) -> Rollout:
    """The shapes and dtypes of a `Rollout` (policy/episodes.py), nothing allocated."""
    size = model_cfg.image_size

    def spec(shape, dtype):
        return jax.ShapeDtypeStruct(shape, jnp.dtype(dtype))

    tb = (horizon, num_envs)
    return Rollout(
        images=spec((*tb, size, size, 3), jnp.uint8),
        prompt_ids=spec((*tb, prompt_len), jnp.int32),
        prompt_mask=spec((*tb, prompt_len), jnp.bool_),
        tokens=spec((*tb, model_cfg.action_dim), jnp.int32),
        token_log_probs=spec((*tb, model_cfg.action_dim), jnp.float32),
        values=spec(tb, jnp.float32),
        rewards=spec(tb, jnp.float32),
        dones=spec(tb, jnp.float32),
        bootstrap_value=spec((num_envs,), jnp.float32),
        group_ids=spec((num_envs,), jnp.int32),
        valid=spec(tb, jnp.float32),
    )


def random_rollout(spec: Rollout, model_cfg, seed: int) -> Rollout:
    """Values for `spec`: random images, prompts of 2/3 their padded length, random tokens."""
    rng = np.random.default_rng(seed)
    horizon, num_envs, prompt_len = spec.prompt_ids.shape
    shape = (horizon, num_envs)
    return Rollout(
        images=rng.integers(0, 256, spec.images.shape, dtype=np.uint8),
        prompt_ids=rng.integers(3, model_cfg.action_token_begin, spec.prompt_ids.shape).astype(np.int32),
        prompt_mask=np.broadcast_to(
            np.arange(prompt_len) < max(2, 2 * prompt_len // 3), spec.prompt_mask.shape
        ),
        tokens=rng.integers(0, 256, spec.tokens.shape).astype(np.int32),
        token_log_probs=(rng.normal(size=spec.tokens.shape) - 38.0 / 7).astype(np.float32),
        values=rng.normal(size=shape).astype(np.float32),
        rewards=rng.normal(size=shape).astype(np.float32),
        dones=(rng.uniform(size=shape) < 0.05).astype(np.float32),
        bootstrap_value=rng.normal(size=(num_envs,)).astype(np.float32),
        group_ids=(np.arange(num_envs) // 2).astype(np.int32),
        valid=np.ones(shape, np.float32),
    )


def learn_step(config, hp, model_cfg, critic, out_shardings=None):
    """The update jitted as the loop jits it: state donated, `out_shardings` (state, metrics)."""
    actor_tx, critic_tx = builders.optimizers(config)
    step = functools.partial(
        update_lib.update, hp, model_cfg, critic, actor_tx, critic_tx, config.optim.max_grad_norm
    )
    return jax.jit(step, out_shardings=out_shardings, donate_argnums=0)


def compiled_bytes(learn, state, rollout) -> dict[str, int]:
    """XLA's memory analysis of the update compiled for these (abstract) arguments."""
    return memory_stats(learn.lower(state, rollout).compile())


def memory_stats(compiled) -> dict[str, int]:
    """Per-device bytes of a compiled executable. `total` = argument + output + temp - alias
    (donated inputs' buffers are reused for the outputs): what the program needs while it runs."""
    analysis = compiled.memory_analysis()
    out = {
        "argument": int(analysis.argument_size_in_bytes),
        "output": int(analysis.output_size_in_bytes),
        "temp": int(analysis.temp_size_in_bytes),
        "alias": int(analysis.alias_size_in_bytes),
    }
    out["total"] = out["argument"] + out["output"] + out["temp"] - out["alias"]
    return out


def build_arm(config, critic_name: str, horizon: int, num_envs: int):
    """(config, hparams, model config, critic, abstract TrainState, abstract Rollout [horizon,
    num_envs]) for `config` with `critic_name`: shapes only, nothing allocated."""
    config = arm_config(config, critic_name)
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
    critic = builders.make_critic(hp, config)
    state = builders.abstract_state(config, hp, model_cfg, critic)
    rollout = abstract_rollout(model_cfg, horizon, num_envs, config.model.max_prompt_tokens)
    return config, hp, model_cfg, critic, state, rollout


def _counts(state) -> dict[str, int]:
    critic = count(state.critic)
    return {
        "params_total": count(state.trainable) + count(state.frozen) + critic,
        "params_trainable": count(state.trainable) + critic,
        "params_critic": critic,
    }


def parameter_counts(config) -> dict:
    """Both arms' counts from abstract shapes alone (nothing compiled or allocated)."""
    arms = {arm: _counts(build_arm(config, name, 1, 1)[4]) for arm, name in ARMS.items()}
    return _finish(arms)


def _finish(arms: dict) -> dict:
    arms["evi_extra_params"] = arms["with_evi"]["params_total"] - arms["without_evi"]["params_total"]
    arms["evi_extra_share"] = arms["evi_extra_params"] / arms["with_evi"]["params_total"]
    return arms


def measure_openvla_7b(config) -> dict:
    """7B shapes (`config` should be the `paper` preset): counts and compiled update memory
    for one optimizer step on a minibatch of 8, from abstract bf16 shapes only."""
    config = config.copy_and_resolve_references()
    config.unlock()
    config.env.num_envs, config.env.max_episode_steps = OPENVLA_7B_MINIBATCH, 1
    config.rollout.episodes_per_env = 1
    config.ppo.minibatch_size, config.ppo.grad_accum_steps, config.ppo.epochs = OPENVLA_7B_MINIBATCH, 1, 1
    arms = {}
    for arm, name in ARMS.items():
        cfg, hp, model_cfg, critic, state, rollout = build_arm(config, name, 1, OPENVLA_7B_MINIBATCH)
        memory = compiled_bytes(learn_step(cfg, hp, model_cfg, critic), state, rollout)
        arms[arm] = _counts(state) | {"update_compiled_bytes": memory["total"], "update_memory": memory}
    arms["shapes"] = {"minibatch": OPENVLA_7B_MINIBATCH, "param_dtype": config.model.param_dtype}
    return _finish(arms)


def _median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def measure_cpu(config, repeats: int = 7) -> dict:
    """The config's own sizes (a policy step of env.num_envs, an update of env.num_envs x
    rollout.episodes_per_env episodes of env.max_episode_steps), real random params: counts,
    compiled update memory, and the median policy-step and update latency over `repeats` rounds,
    each round timing both arms one after the other."""
    horizon, num_envs = config.env.max_episode_steps, config.env.num_envs
    episodes = episodes_per_iteration(config)
    arms, runs = {}, {}
    for arm, name in ARMS.items():
        cfg, hp, model_cfg, critic, abstract, rollout_spec = build_arm(config, name, horizon, episodes)
        learn = learn_step(cfg, hp, model_cfg, critic)
        memory = compiled_bytes(learn, abstract, rollout_spec)
        arms[arm] = _counts(abstract) | {"update_compiled_bytes": memory["total"], "update_memory": memory}
        state = builders.initial_state(cfg, hp, model_cfg, critic)
        rollout = random_rollout(rollout_spec, model_cfg, seed=17)
        act = make_act(model_cfg, critic, hp.descriptor_mode, hp.descriptor_tokens)
        act_args = (
            rollout.images[0, :num_envs],
            rollout.prompt_ids[0, :num_envs],
            rollout.prompt_mask[0, :num_envs],
            jax.random.PRNGKey(3),
            hp.temperature,
        )
        runs[arm] = {"state": state, "learn": learn, "rollout": rollout, "act": act, "act_args": act_args}
        arms[arm] |= {"policy_ms": [], "update_ms": []}
    for round_index in range(repeats + 1):  # round 0 compiles and is not counted
        for arm, run in runs.items():
            clock = time.perf_counter()
            out = run["act"](run["state"].policy_params, run["state"].critic, *run["act_args"])
            jax.block_until_ready(out)
            policy_s = time.perf_counter() - clock
            clock = time.perf_counter()
            run["state"], metrics = run["learn"](run["state"], run["rollout"])
            jax.block_until_ready((run["state"], metrics))
            update_s = time.perf_counter() - clock
            if round_index:
                arms[arm]["policy_ms"].append(policy_s)
                arms[arm]["update_ms"].append(update_s)
    for arm in ARMS:
        arms[arm]["policy_ms"] = _median_ms(arms[arm]["policy_ms"])
        arms[arm]["update_ms"] = _median_ms(arms[arm]["update_ms"])
    arms["shapes"] = {"num_envs": num_envs, "episodes": episodes, "horizon": horizon, "repeats": repeats}
    return _finish(arms)


def markdown_table(report: dict) -> str:
    rows = [
        "| scale | arm | params total | params trainable | update compiled MiB | policy ms | update ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for scale, arms in report.items():
        for arm in ARMS:
            m = arms[arm]
            timing = [f"{m[k]:.1f}" if k in m else "-" for k in ("policy_ms", "update_ms")]
            rows.append(
                f"| {scale} | {arm} | {m['params_total']:,} | {m['params_trainable']:,} | "
                f"{m['update_compiled_bytes'] / 2**20:.1f} | {' | '.join(timing)} |"
            )
        rows.append(
            f"| {scale} | EVI extra | {arms['evi_extra_params']:,} ({arms['evi_extra_share']:.4%}) | | | | |"
        )
    return "\n".join(rows)
