"""The host training loop: rollout on the simulator, one jitted update, logs and checkpoints."""

import functools
import os
import time

import jax
import numpy as np
from tqdm import tqdm

from rl2vla_jax import checkpoints
from rl2vla_jax import mesh as mesh_lib
from rl2vla_jax.data.norm_stats import select_stats
from rl2vla_jax.data.prompt import load_tokenizer, tiny_tokenizer
from rl2vla_jax.policy import episodes as episodes_lib
from rl2vla_jax.policy import loading
from rl2vla_jax.policy.act import make_act
from rl2vla_jax.policy.actions import ActionDecoder
from rl2vla_jax.train import builders, hparams
from rl2vla_jax.train import update as update_lib
from rl2vla_jax.train.logging import RunLogger
from rl2vla_jax.video import write_video


def episode_seeds(config, iteration: int, group_size: int) -> list[int]:
    """Deterministic per-iteration episode seeds (so a resumed run replays the same episodes);
    GRPO (s) gives every env of a group the same seed, hence the same initial state."""
    num_envs = config.env.num_envs  # per process; each process runs its own envs
    base = config.seed * 1_000_003 + (iteration * jax.process_count() + jax.process_index()) * num_envs
    if config.algorithm == "grpo_s":
        return [base + i // group_size for i in range(config.env.num_envs)]
    return [base + i for i in range(config.env.num_envs)]


def _start_point(config, hp, model_cfg, critic, workdir, mgr):
    """Resume order: this workdir's latest checkpoint, then `config.resume` (another run's
    checkpoints), then `config.init_from` (converted OpenVLA / SFT params), then scratch."""
    for directory, source in ((None, workdir), (config.resume, config.resume)):
        resume_mgr = mgr if directory is None else checkpoints.manager(directory) if directory else None
        if resume_mgr is not None and resume_mgr.latest_step() is not None:
            template = builders.initial_state(config, hp, model_cfg, critic)
            state, assets = checkpoints.restore(resume_mgr, template, config.trainable)
            return state, assets, f"resumed from {source} at iteration {int(state.iteration)}"
    if config.init_from:
        params, _, assets = checkpoints.load_policy(config.init_from)
        params, _ = checkpoints.with_lora(params, model_cfg, config.adapter, jax.random.PRNGKey(config.seed))
        state = builders.initial_state(config, hp, model_cfg, critic, params)
        return state, assets, f"initialised from {config.init_from}"
    return builders.initial_state(config, hp, model_cfg, critic), {}, "random initialisation"


def train(config, workdir: str) -> dict:
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config, checkpoints.load_model_config(config.init_from))
    critic = builders.make_critic(hp, config)
    actor_tx, critic_tx = builders.optimizers(config)
    os.makedirs(workdir, exist_ok=True)
    mgr = checkpoints.manager(os.path.join(workdir, "checkpoints"))
    state, assets, origin = _start_point(config, hp, model_cfg, critic, workdir, mgr)
    from rl2vla_jax.envs import make_vector_env  # imports the simulator: only when training
    from rl2vla_jax.envs.actions import FULL_RANGE_ACTION_STATS, FULL_RANGE_KEY

    # A random init has no dataset statistics: its [-1, 1] spans the controller's full range.
    norm_stats = assets.get("norm_stats") or {FULL_RANGE_KEY: {"action": FULL_RANGE_ACTION_STATS}}
    tokenizer_path = assets.get("tokenizer") or tiny_tokenizer()
    action_stats = select_stats(norm_stats, config.unnorm_key or None)
    assets = {
        "model_config": model_cfg.to_dict(),
        "norm_stats": norm_stats,
        "tokenizer": tokenizer_path,
        "config": config.to_json(),
    }
    tokenizer = load_tokenizer(tokenizer_path)
    decoder = ActionDecoder(model_cfg, action_stats)

    mesh = mesh_lib.make_mesh(config.mesh.data, config.mesh.fsdp)
    mesh_lib.check_batch_split(mesh, config.env.num_envs, "config.env.num_envs")
    state_sharding = mesh_lib.param_sharding(mesh, state, config.mesh.fsdp_min_size)
    state = mesh_lib.place(state, state_sharding)
    to_actor = mesh_lib.acting_copy(mesh)  # whole params on this process's first device
    mesh_lib.check_acting_copy_fits(mesh, (state.trainable, state.frozen, state.critic))
    act = make_act(model_cfg, critic if hp.uses_critic else None, hp.descriptor_mode)
    learn = jax.jit(
        functools.partial(
            update_lib.update, hp, model_cfg, critic, actor_tx, critic_tx, config.optim.max_grad_norm
        ),
        out_shardings=(state_sharding, mesh_lib.replicated(mesh)),
        donate_argnums=0,
    )
    # Global group ids: this process's envs form groups of their own.
    groups_per_process = -(-config.env.num_envs // hp.group_size)
    group_ids = np.arange(config.env.num_envs) // hp.group_size + jax.process_index() * groups_per_process
    rollout_key = jax.random.PRNGKey(config.seed + 1)

    env = make_vector_env(
        config.env.setting,
        config.env.num_envs,
        backend=config.env.backend,
        image_size=config.env.image_size,
        max_episode_steps=config.env.max_episode_steps,
        seed=config.seed,
        suite=config.env.suite,
    )
    actor = episodes_lib.Actor(
        env, act, tokenizer, decoder, model_cfg.image_size, config.model.max_prompt_tokens
    )
    logger = RunLogger(workdir, config.train.use_wandb, config, enabled=jax.process_index() == 0)
    start = int(state.iteration)
    logger.keep_earlier_rows(start)
    print(
        f"[train] {config.name}: {origin}; {start}/{config.train.iterations} iterations done; "
        f"{jax.device_count()} device(s), mesh {dict(mesh.shape)}",
        flush=True,
    )
    try:
        bar = tqdm(
            range(start, config.train.iterations),
            initial=start,
            total=config.train.iterations,
            desc="iterations",
            dynamic_ncols=True,
            disable=jax.process_index() != 0,
        )
        for iteration in bar:
            keep_frames = bool(config.train.video_every) and iteration % config.train.video_every == 0
            # No reference to the acting copy outlives the rollout: `learn` donates the state.
            episodes = episodes_lib.run_episodes(
                actor,
                *to_actor((state.policy_params, state.critic)),
                episode_seeds(config, iteration, hp.group_size),
                jax.random.fold_in(jax.random.fold_in(rollout_key, iteration), jax.process_index()),
                hp.temperature,
                record=True,
                keep_videos=1 if keep_frames else 0,
            )
            rollout, stats = episodes_lib.to_rollout(episodes, group_ids), episodes.stats()
            frames = episodes.frames[0] if keep_frames else None
            clock = time.perf_counter()
            batch = mesh_lib.global_batch(rollout, mesh_lib.env_axis_sharding(mesh, rollout))
            state, metrics = learn(state, batch)
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            stats["time_update"] = time.perf_counter() - clock
            metrics |= stats
            if config.train.eval_every and (iteration + 1) % config.train.eval_every == 0:
                metrics |= _evaluate(config, actor, to_actor((state.policy_params, state.critic)), iteration)
            if frames:
                write_video(os.path.join(workdir, "videos", f"iteration_{iteration:05d}.mp4"), frames)
            if (iteration + 1) % config.train.log_every == 0:
                logger.log(iteration, metrics)
            bar.set_postfix(
                ret=f"{metrics['return']:.3f}",
                succ=f"{metrics['success']:.2f}",
                ent=f"{metrics['policy_entropy']:.3f}",
            )
            last = iteration + 1 == config.train.iterations
            if last or (iteration + 1) % config.train.checkpoint_every == 0:
                checkpoints.save(mgr, state, assets)
        bar.close()
    finally:
        env.close()
        logger.close()
    table = logger.summary()
    print(f"\n{config.name} summary ({workdir}/summary.md):\n{table}", flush=True)
    # A recompile per iteration would be a bug: both caches should hold one program.
    compiles = {"policy_step": act._cache_size(), "update": learn._cache_size()}
    return {"rows": logger.rows, "state": state, "compiles": compiles}


def _evaluate(config, actor, acting, iteration) -> dict[str, float]:
    """`train.eval_episodes` episodes (rounded up to whole batches of envs) on the training
    envs at the evaluation temperature (RL4VLA: 0.6), with seeds never used for training.
    The trainer's envs are the ID `train` setting; OOD suites are `python -m rl2vla_jax.eval`.
    `acting`: (policy params, critic params) as `mesh.acting_copy` gives them."""
    num_envs = config.env.num_envs
    rounds = -(-config.train.eval_episodes // num_envs)
    results = []
    for r in range(rounds):
        first = 10**9 + ((iteration * rounds + r) * jax.process_count() + jax.process_index()) * num_envs
        episodes = episodes_lib.run_episodes(
            actor,
            *acting,
            list(range(first, first + num_envs)),
            jax.random.fold_in(jax.random.PRNGKey(10**6 + iteration), r),
            config.rollout.eval_temperature,
        )
        results.append(episodes.stats())
    return {
        f"eval_{k}": float(np.mean([s[k] for s in results])) for k in ("success", "success_once", "return")
    }
