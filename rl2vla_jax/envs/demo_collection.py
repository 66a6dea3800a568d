"""Scripted-expert rollouts recorded as demonstration steps (used by `rl2vla_jax.collect_demos`)."""

from __future__ import annotations

import json
import multiprocessing
import os

import numpy as np
from tqdm import tqdm

from rl2vla_jax.data import demos
from rl2vla_jax.envs.actions import MAX_TRANSLATION
from rl2vla_jax.envs.settings import SETTINGS
from rl2vla_jax.validation import ConfigError

SUCCESS_HOLD_STEPS = 2  # keep recording this many steps after a stable success (retreat)

_worker_state: dict = {}


def _init_worker(
    setting: str,
    image_size: int,
    max_steps: int,
    env_options: dict,
    hold_steps: int,
    action_noise: float,
    expert_step: float,
):
    from rl2vla_jax.envs.cpu_worker import make_single_env
    from rl2vla_jax.envs.expert import ScriptedExpert

    env = make_single_env(SETTINGS[setting].env_id, image_size, max_steps, env_options=env_options)
    _worker_state.update(
        env=env,
        expert=ScriptedExpert(env, expert_step),
        max_steps=max_steps,
        hold_steps=hold_steps,
        action_noise=action_noise,
    )


def record_episode(seed: int):
    """Roll the expert out for one episode; returns (seed, encoded step records, actions, proprios, success).

    With `action_noise` > 0 the executed translation is the expert's plus N(0, noise^2) metres
    per axis while the recorded label stays the expert's own action (DART: the demonstrations
    then show how the expert recovers from the small errors a cloned policy makes)."""
    from rl2vla_jax.envs.actions import MAX_TRANSLATION, openvla_to_controller
    from rl2vla_jax.envs.expert import RETREAT

    env, expert, max_steps = _worker_state["env"], _worker_state["expert"], _worker_state["max_steps"]
    obs, _ = env.reset(seed=int(seed))
    expert.reset()
    unwrapped = env.unwrapped
    instruction = unwrapped.instructions[0]
    steps, held = [], 0
    noise = np.random.default_rng([int(seed), 1]).normal(0.0, _worker_state["action_noise"], (max_steps, 3))
    for t in range(max_steps):
        tcp = unwrapped.agent.tcp_pose.raw_pose[0].cpu().numpy()
        opening = float(unwrapped.agent.robot.get_qpos()[0, -2:].sum())
        action = expert.act()
        image = obs["sensor_data"]["base_camera"]["rgb"][0].cpu().numpy()
        executed = action.copy()
        executed[:3] = np.clip(action[:3] + noise[t], -MAX_TRANSLATION, MAX_TRANSLATION)
        obs, reward, _, _, info = env.step(openvla_to_controller(executed))
        success = bool(info["success"][0])
        held = held + 1 if (success and expert.phase == RETREAT) else 0
        steps.append(
            dict(
                episode=int(seed),
                step=t,
                image=image,
                instruction=instruction,
                action=action,
                proprio=np.concatenate([tcp, [opening]]).astype(np.float32),
                reward=float(reward[0]),
                is_first=t == 0,
                is_last=False,
                success=success,
            )
        )
        if held >= _worker_state["hold_steps"]:
            break
    episode_success = steps[-1]["success"]
    steps[-1]["is_last"] = True
    for step in steps:
        step["episode_success"] = episode_success
    records = [demos.encode_step(step) for step in steps]
    actions = np.stack([s["action"] for s in steps])
    proprios = np.stack([s["proprio"] for s in steps])
    return int(seed), records, actions, proprios, episode_success


def collect(
    out: str,
    num_episodes: int,
    setting: str = "train",
    image_size: int = 224,
    max_steps: int = 40,
    num_workers: int = 1,
    seed: int = 0,
    episodes_per_shard: int = 32,
    env_options: dict | None = None,
    hold_steps: int = SUCCESS_HOLD_STEPS,
    action_noise: float = 0.0,
    expert_step: float = MAX_TRANSLATION,
) -> dict:
    """Collect until `out` holds `num_episodes` successful episodes (resuming what is there).

    Episode seeds are seed, seed+1, ...; seeds already recorded (successful or failed) are
    skipped, so an interrupted run picks up where it stopped. After a stable success the expert
    hovers (retreat) and `hold_steps` more steps are recorded: what a policy should do once the
    object is placed, for the rest of an evaluation episode."""
    _check_same_collection(
        out,
        dict(
            setting=setting,
            image_size=image_size,
            max_steps=max_steps,
            hold_steps=hold_steps,
            action_noise=action_noise,
            expert_step=expert_step,
            **(env_options or {}),
        ),
    )
    writer = demos.DemoWriter(out, episodes_per_shard=episodes_per_shard)
    progress = tqdm(total=num_episodes, initial=min(writer.num_successful, num_episodes), unit="episode")
    # One single-process pool per worker, so that each worker plays a fixed share of the seeds
    # (see _in_seed_order); one shared pool hands a seed to whichever worker is free.
    worker_args = (setting, image_size, max_steps, dict(env_options or {}), hold_steps, action_noise, expert_step)
    pools = []
    if num_workers > 1:
        context = multiprocessing.get_context("spawn")
        pools = [context.Pool(1, initializer=_init_worker, initargs=worker_args) for _ in range(num_workers)]
    else:
        _init_worker(*worker_args)
    next_seed = seed
    try:
        while writer.num_successful < num_episodes:
            missing = num_episodes - writer.num_successful
            batch = []
            while len(batch) < missing + max(num_workers - 1, 0):
                if next_seed not in writer.done_seeds:
                    batch.append(next_seed)
                next_seed += 1
            results = _in_seed_order(pools, batch) if pools else map(record_episode, batch)
            for episode_seed, records, actions, proprios, success in results:
                if writer.num_successful >= num_episodes:
                    continue  # surplus from the last batch: not recorded, so not marked done
                writer.add_episode(episode_seed, records, actions, proprios, success)
                progress.update(int(success))
                progress.set_postfix(failed=len(writer.done_seeds) - writer.num_successful)
    finally:
        writer.close()
        progress.close()
        for pool in pools:
            pool.terminate()
        if not pools and "env" in _worker_state:
            _worker_state.pop("env").close()
    return writer_summary(out)


def _in_seed_order(pools: list, seeds: list[int]):
    """Play seeds[i] on worker i % len(pools), yielding the results in seed order.

    In seed order, so that SFT holds out and batches the same episodes whatever finished first.
    On fixed workers, because an env's episode depends on what that env played before (up to
    5.9 mm in a commanded step, exp31: the physics engine carries state across resets): with a
    fixed share per worker the same command writes bit-identical demonstrations. (An episode
    played after a resume, or with another worker count, still differs by that much.)"""
    streams = [pool.imap(record_episode, seeds[w :: len(pools)]) for w, pool in enumerate(pools)]
    for i in range(len(seeds)):
        yield next(streams[i % len(pools)])


COLLECTION_FILE = "collection.json"


def _check_same_collection(out: str, conditions: dict) -> None:
    """Record what the demonstrations were collected under; a resumed collection must match
    (mixing cameras or layouts in one dataset would be silent and wrong)."""
    path = os.path.join(out, COLLECTION_FILE)
    if os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
        changed = sorted(k for k in stored.keys() | conditions.keys() if stored.get(k) != conditions.get(k))
        if changed:
            raise ConfigError(
                f"{out} holds demonstrations collected with other {', '.join(changed)} "
                f"({', '.join(f'{k}={stored.get(k)!r}' for k in changed)}); pass another --out"
            )
        return
    os.makedirs(out, exist_ok=True)
    with open(f"{path}.tmp", "w") as f:
        json.dump(conditions, f, indent=1)
    os.replace(f"{path}.tmp", path)


def writer_summary(out: str) -> dict:
    manifest = demos.read_manifest(out)
    successful = sum(len(e["episodes"]) for e in manifest)
    failed = sum(len(e.get("failed", [])) for e in manifest)
    return dict(successful=successful, failed=failed, steps=sum(e["steps"] for e in manifest))
