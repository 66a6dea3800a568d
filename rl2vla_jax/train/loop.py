"""The host training loop: rollout on the simulator, one jitted update, logs and checkpoints."""

import dataclasses
import functools
import json
import os
import time

import jax
import numpy as np
from tqdm import tqdm

from rl2vla_jax import checkpoints, cli, config_base, files
from rl2vla_jax import mesh as mesh_lib
from rl2vla_jax.data.norm_stats import select_stats
from rl2vla_jax.data.prompt import load_tokenizer, tiny_tokenizer
from rl2vla_jax.policy import episodes as episodes_lib
from rl2vla_jax.policy import loading
from rl2vla_jax.policy import records as records_lib
from rl2vla_jax.policy.act import make_act
from rl2vla_jax.policy.actions import ActionDecoder
from rl2vla_jax.train import builders, hparams
from rl2vla_jax.train import update as update_lib
from rl2vla_jax.train.episode_plan import episode_seeds, rollout_group_ids, samples_per_iteration
from rl2vla_jax.train.logging import RunLogger, first_non_finite
from rl2vla_jax.train.workdir_lock import WorkdirLock
from rl2vla_jax.validation import ConfigError, RunStopped
from rl2vla_jax.video import write_video


def _start_point(config, hp, model_cfg, critic, mgr, template):
    """Resume order: this workdir's latest intact checkpoint (a corrupt newer step is moved
    aside with a warning), then `config.resume` (another run's checkpoint: the step
    `checkpoints.resolve` names), then `config.init_from` (converted OpenVLA / SFT params),
    then scratch. Checkpoints restore into `template` (abstract, sharded): nothing is drawn."""
    params_template, train_state_template = builders.checkpoint_items(template)
    restored = checkpoints.restore_latest(mgr, params_template, train_state_template)
    source = mgr.directory
    if restored is None and config.resume:
        step = checkpoints.resolve(config.resume)
        other = checkpoints.reader(step.directory)
        try:
            restored = (
                step.step,
                *checkpoints.restore(other, step.step, params_template, train_state_template),
            )
        finally:
            other.close()
        source = step.path
    if restored is not None:
        _, params, train_state, assets = restored
        state = builders.from_checkpoint_items(params, train_state, config.trainable)
        return state, assets, f"resumed from {source} at iteration {int(state.iteration)}"
    if config.init_from:
        params, _, assets = checkpoints.load_policy(config.init_from)
        params, _ = checkpoints.with_lora(params, model_cfg, config.adapter, jax.random.PRNGKey(config.seed))
        state = builders.initial_state(config, hp, model_cfg, critic, params)
        return state, assets, f"initialised from {config.init_from}"
    return builders.initial_state(config, hp, model_cfg, critic), {}, "random initialisation"


RUN_FILE = "run.json"


def write_run_description(workdir: str, config) -> None:
    """`<workdir>/run.json`: the config and how many env steps one iteration takes over all
    processes (what learning curves put on their x axis)."""
    description = {
        "config": json.loads(config.to_json()),
        "process_count": jax.process_count(),
        "env_steps_per_iteration": samples_per_iteration(config) * jax.process_count(),
    }
    files.write_json(os.path.join(workdir, RUN_FILE), description)


def train(config, workdir: str) -> dict:
    """Run (or resume) `config` in `workdir`. Raises WorkdirBusy when another trainer holds the
    workdir, RunStopped on non-finite values or a failed save (the newest checkpoint is then
    the last good one)."""
    hp = hparams.rl_hparams(config)
    eval_settings = _eval_settings(config)  # before anything is written
    model_cfg = loading.model_config(config, checkpoints.load_model_config(config.init_from))
    _check_unnorm_key(config)
    os.makedirs(workdir, exist_ok=True)
    # Process 0 speaks for a multi-host run (the others share its workdir).
    lock = WorkdirLock(workdir).acquire() if jax.process_index() == 0 else None
    try:
        return _train(config, workdir, hp, model_cfg, eval_settings)
    finally:
        if lock is not None:
            lock.release()


def _train(config, workdir: str, hp, model_cfg, eval_settings: list[str]) -> dict:
    critic = builders.make_critic(hp, config)
    actor_tx, critic_tx = builders.optimizers(config)
    phase = _phase_reporter()
    mgr = checkpoints.manager(os.path.join(workdir, checkpoints.CHECKPOINTS))
    mesh = mesh_lib.make_mesh(config.mesh.data, config.mesh.fsdp)
    mesh_lib.check_batch_split(mesh, config.env.num_envs, "config.env.num_envs")
    abstract = builders.abstract_state(config, hp, model_cfg, critic)
    template = checkpoints.abstract(
        abstract, mesh_lib.param_sharding(mesh, abstract, config.mesh.fsdp_min_size)
    )
    state, assets, origin = _start_point(config, hp, model_cfg, critic, mgr, template)
    if int(state.iteration):
        _check_same_rounds(workdir, config)
    from rl2vla_jax.envs import make_vector_env  # imports the simulator: only when training
    from rl2vla_jax.envs.actions import FULL_RANGE_ACTION_STATS, FULL_RANGE_KEY

    # A random init has no dataset statistics: its [-1, 1] spans the controller's full range.
    norm_stats = assets.get("norm_stats") or {FULL_RANGE_KEY: {"action": FULL_RANGE_ACTION_STATS}}
    tokenizer_path = assets.get("tokenizer") or tiny_tokenizer()
    action_stats = select_stats(norm_stats, config.unnorm_key or None)
    conditions = config_base.env_conditions(config)
    assets = checkpoints.make_assets(model_cfg, norm_stats, tokenizer_path, config.to_json(), conditions)
    tokenizer = load_tokenizer(tokenizer_path)
    decoder = ActionDecoder(model_cfg, action_stats)

    state_sharding = mesh_lib.param_sharding(mesh, state, config.mesh.fsdp_min_size)
    state = mesh_lib.place(state, state_sharding)
    to_actor = mesh_lib.acting_copy(mesh)  # whole params on this process's first device
    mesh_lib.check_acting_copy_fits(mesh, (state.trainable, state.frozen, state.critic))
    act = make_act(model_cfg, critic if hp.uses_critic else None, hp.descriptor_mode, hp.descriptor_tokens)
    learn = jax.jit(
        functools.partial(
            update_lib.update, hp, model_cfg, critic, actor_tx, critic_tx, config.optim.max_grad_norm
        ),
        out_shardings=(state_sharding, mesh_lib.replicated(mesh)),
        donate_argnums=0,
    )
    per_env = config.rollout.episodes_per_env
    group_ids = rollout_group_ids(config.env.num_envs, hp.group_size, per_env, jax.process_index())
    rollout_key = jax.random.PRNGKey(config.seed + 1)

    def make_env(setting, reward_options=None):
        return make_vector_env(
            setting,
            config.env.num_envs,
            backend=config.env.backend,
            image_size=config.env.image_size,
            max_episode_steps=config.env.max_episode_steps,
            seed=config.seed,
            suite=config.env.suite,
            env_options=config_base.env_options(conditions) | (reward_options or {}),
            step_timeout_s=config.env.step_timeout_s,
        )

    # A shaped reward is the training env's alone (its periodic ID evaluation's return includes it;
    # the OOD evaluations' and `python -m rl2vla_jax.eval`'s do not); success is the same.
    shaping = config.env.reach_shaping
    env = make_env(config.env.setting, {"reach_shaping": shaping} if shaping else None)
    eval_envs = {}  # OOD settings evaluated while training, made at their first evaluation
    actor = episodes_lib.Actor(
        env,
        act,
        tokenizer,
        decoder,
        model_cfg.image_size,
        config.model.max_prompt_tokens,
        model_cfg.llm.vocab_size,
        config.env.pipeline_groups,
    )
    logger = RunLogger(workdir, config.train.use_wandb, config, enabled=jax.process_index() == 0)
    start = int(state.iteration)
    logger.keep_earlier_rows(start)
    if jax.process_index() == 0:
        write_run_description(workdir, config)
    # Wall-clock seconds of training, continued across resumes (learning curves vs time).
    elapsed_before = logger.rows[-1].get("elapsed_seconds", 0.0) if logger.rows else 0.0
    run_clock = time.perf_counter()
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
            phase(iteration, "rollout")
            keep_frames = bool(config.train.video_every) and iteration % config.train.video_every == 0
            # No reference to the acting copy outlives the rollout: `learn` donates the state.
            acting = to_actor((state.policy_params, state.critic))
            seeds = [episode_seeds(config, iteration, hp.group_size, k) for k in range(per_env)]
            episodes = episodes_lib.concatenate(
                [
                    episodes_lib.run_episodes(
                        actor,
                        *acting,
                        seeds[k],
                        jax.random.fold_in(
                            jax.random.fold_in(rollout_key, iteration * per_env + k), jax.process_index()
                        ),
                        hp.temperature,
                        record=True,
                        keep_videos=1 if keep_frames and k == 0 else 0,
                    )
                    for k in range(per_env)
                ]
            )
            del acting
            rollout, stats = episodes_lib.to_rollout(episodes, group_ids), episodes.stats()
            if config.train.diagnostics_every and iteration % config.train.diagnostics_every == 0:
                _write_records(workdir, config, hp, episodes, iteration, sum(seeds, []))
            frames = episodes.frames[0] if keep_frames else None
            phase(iteration, "update")
            clock = time.perf_counter()
            batch = mesh_lib.global_batch(rollout, mesh_lib.env_axis_sharding(mesh, rollout))
            state, metrics = learn(state, batch)
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            stats["time_update"] = time.perf_counter() - clock
            stats["worker_restarts"] = float(getattr(env, "restarts", 0))  # since this process started
            stats["elapsed_seconds"] = elapsed_before + time.perf_counter() - run_clock
            metrics |= stats
            if config.train.eval_every and (iteration + 1) % config.train.eval_every == 0:
                acting = to_actor((state.policy_params, state.critic))
                metrics |= _evaluate(config, actor, acting, iteration)
                for setting in eval_settings:  # beside the ID evaluation, RL4VLA's interval evaluation
                    if setting not in eval_envs:
                        eval_envs[setting] = make_env(setting)
                    video = os.path.join(workdir, "videos", f"eval_{setting}_{iteration:05d}.mp4")
                    ood_actor = dataclasses.replace(actor, env=eval_envs[setting])
                    metrics |= _evaluate(config, ood_actor, acting, iteration, f"eval_{setting}", video)
            bad = first_non_finite(metrics)
            if bad is not None:  # checked every iteration: no checkpoint may hold the diverged state
                raise RunStopped(
                    f"non-finite {bad}={metrics[bad]} at iteration {iteration}; {_last_good(mgr)}, "
                    "nothing was saved after it"
                )
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
                phase(iteration, "checkpoint")
                params_item, train_state_item = builders.checkpoint_items(state)
                try:
                    checkpoints.save(mgr, iteration + 1, params_item, assets, train_state_item)
                except OSError as err:  # disk full, quota, a vanished mount: orbax renames only
                    # complete steps, so the older ones are intact
                    raise RunStopped(
                        f"saving checkpoint step {iteration + 1} failed ({type(err).__name__}: "
                        f"{cli.one_line(err)}); {_last_good(mgr)}, the run stopped"
                    ) from err
                phase(iteration, "saved")
        bar.close()
    finally:
        env.close()
        for eval_env in eval_envs.values():
            eval_env.close()
        logger.close()
        mgr.close()
    table = logger.summary()
    print(f"\n{config.name} summary ({workdir}/summary.md):\n{table}", flush=True)
    # A recompile per iteration would be a bug: both caches should hold one program.
    compiles = {"policy_step": act._cache_size(), "update": learn._cache_size()}
    return {"rows": logger.rows, "state": state, "compiles": compiles}


def _check_same_rounds(workdir: str, config) -> None:
    """A resumed run keeps the `rollout.episodes_per_env` it started with: its episode seeds and
    the env steps of its logged iterations follow it."""
    path = os.path.join(workdir, RUN_FILE)
    if not os.path.exists(path):  # resumed from another run's checkpoint (config.resume)
        return
    with open(path) as f:
        before = json.load(f)["config"]["rollout"].get("episodes_per_env", 1)
    if before != config.rollout.episodes_per_env:
        raise ConfigError(
            f"config.rollout.episodes_per_env={config.rollout.episodes_per_env} differs from the {before} "
            f"that {workdir} ran with; resume with --config.rollout.episodes_per_env={before} or use a new workdir"
        )


def _check_unnorm_key(config) -> None:
    """A wrong `unnorm_key` is refused before anything is written. The statistics come from
    `init_from` (a resumed run saved the same ones), or are the controller's full range."""
    if not config.unnorm_key:
        return
    if config.init_from:
        stats = checkpoints.read_assets(checkpoints.resolve(config.init_from))["norm_stats"]
    else:
        from rl2vla_jax.envs.actions import FULL_RANGE_ACTION_STATS, FULL_RANGE_KEY

        stats = {FULL_RANGE_KEY: {"action": FULL_RANGE_ACTION_STATS}}
    select_stats(stats, config.unnorm_key)


def _last_good(mgr) -> str:
    steps = checkpoints.saved_steps(str(mgr.directory))
    if not steps:
        return "no checkpoint was saved before it"
    return f"the last good checkpoint is {os.path.join(str(mgr.directory), str(steps[-1]))}"


PHASE_LOG_ENV = "RL2VLA_PHASE_LOG"


def _phase_reporter():
    """When $RL2VLA_PHASE_LOG names a file, each phase's start is appended to it as
    `<iteration> <phase> <unix time>` (rollout, update, checkpoint): how scripts/kill_soak.py
    aims its kills. Unset (the normal case) it does nothing."""
    path = os.environ.get(PHASE_LOG_ENV)
    if not path or jax.process_index() != 0:
        return lambda iteration, name: None

    def report(iteration: int, name: str) -> None:
        with open(path, "a") as f:
            f.write(f"{iteration} {name} {time.time():.6f}\n")

    return report


def _write_records(workdir, config, hp, episodes, iteration: int, seeds: list[int]) -> None:
    """The rollout's per-sample records (rl2vla_jax/policy/records.py), from the values the
    behaviour critic gave while acting."""
    from rl2vla_jax.envs import suites

    category = suites.get_setting(config.env.suite, config.env.setting).category
    columns = records_lib.episode_records(
        episodes.steps,
        episodes.bootstrap_value,
        episodes.success,
        seeds,
        hp.gamma,
        hp.gae_lambda,
        config.env.setting,
        category,
        iteration,
    )
    if (
        episodes.dropped is not None and episodes.dropped.any()
    ):  # a crashed or hung episode's rows are garbage
        kept = ~np.asarray(episodes.dropped, bool)[columns["env"]]
        columns = {key: value[kept] for key, value in columns.items()}
    suffix = f"_process{jax.process_index()}" if jax.process_count() > 1 else ""
    records_lib.write_records(
        os.path.join(workdir, records_lib.RECORDS_FOLDER, f"iteration_{iteration:05d}{suffix}.npz"), columns
    )


def _eval_settings(config) -> list[str]:
    """`train.eval_settings`, checked against the suite before any simulator starts."""
    from rl2vla_jax.envs import suites

    settings = list(config.train.eval_settings)
    for setting in settings:
        try:
            suites.get_setting(config.env.suite, setting)
        except KeyError as err:
            raise ConfigError(f"config.train.eval_settings: {cli.one_line(err)}") from None
    return settings


def _evaluate(config, actor, acting, iteration, prefix="eval", video_path=None) -> dict[str, float]:
    """`train.eval_episodes` episodes (rounded up to whole batches of envs) on `actor`'s envs
    (the training envs, or an OOD setting's) at `eval.temperature` (RL4VLA: 0.6), with seeds
    never used for training; `video_path`: the first episode's video. Every setting sees the
    same seeds, so ID and OOD differ in the setting only. Full suites: `python -m rl2vla_jax.eval`.
    `acting`: (policy params, critic params) as `mesh.acting_copy` gives them."""
    num_envs = config.env.num_envs
    rounds = -(-config.train.eval_episodes // num_envs)
    results = []
    for r in range(rounds):
        first = 10**9 + ((iteration * rounds + r) * jax.process_count() + jax.process_index()) * num_envs
        keep = 1 if video_path and r == 0 and jax.process_index() == 0 else 0
        episodes = episodes_lib.run_episodes(
            actor,
            *acting,
            list(range(first, first + num_envs)),
            jax.random.fold_in(jax.random.PRNGKey(10**6 + iteration), r),
            config.eval.temperature,
            keep_videos=keep,
        )
        if keep:
            write_video(video_path, episodes.frames[0])
        results.append(episodes.stats())
    return {
        f"{prefix}_{k}": float(np.mean([s[k] for s in results]))
        for k in ("success", "success_once", "return")
    }
