"""Run a policy on the settings of a suite and store each setting's episodes atomically.

Results folder OUT:
  evaluation.json            what was evaluated (checkpoint, suite, seeds, episodes, temperature, ...)
  settings/<setting>.json    per seed: per-episode success (at the last step), success_once and
                             return; written to a temp file and renamed, so a killed evaluation
                             leaves whole settings only; a rerun skips those (resume). Episodes
                             whose simulator worker crashed or hung are not scored: their seeds
                             are listed under `crashed_seeds`, out of every rate.
  videos/<setting>_<k>.mp4   the first episodes of the first seed (camera frames)
  records/<setting>.npz      per-sample records of every scored episode (policy/records.py), with
                             the checkpoint's critic's values when it has one (else V = 0)

Episode e of seed s uses env seed EVAL_SEED_BASE + s * 100_000 + e in every setting (the same
seed gives the same layout in every setting), disjoint from the demonstration seeds (0, 1, ...),
except in `id`: in suite "ours" it is the train distribution itself, so on the train setting's
seeds it would replay the very same episodes and "ID (all)" would count each one twice. Its
episodes come from their own block, EVAL_SEED_BASE + s * 100_000 + 50_000 + e.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import numpy as np

from rl2vla_jax import checkpoints, config_base, files
from rl2vla_jax.policy import episodes as episodes_lib
from rl2vla_jax.policy import loading
from rl2vla_jax.policy import records as records_lib
from rl2vla_jax.policy.act import make_act
from rl2vla_jax.policy.loading import RANDOM
from rl2vla_jax.validation import ConfigError
from rl2vla_jax.video import write_video

EVAL_SEED_BASE = 10_000_000
MAX_EPISODES = 50_000  # per setting and seed: the size of a seed's block for one setting
_SEED_OFFSET = {"id": MAX_EPISODES}  # settings whose episodes must differ from the train setting's


@dataclasses.dataclass(frozen=True)
class Options:
    """What makes two evaluations comparable; stored in evaluation.json and checked on resume."""

    checkpoint: str
    suite: str
    seeds: tuple[int, ...]
    episodes: int
    temperature: float
    max_episode_steps: int
    image_size: int
    camera: str
    layout: str

    def to_dict(self):
        return {**dataclasses.asdict(self), "seeds": list(self.seeds)}


def resolve_checkpoint(path: str) -> str:
    """RANDOM, or the step directory `checkpoints.resolve` picks (stored in evaluation.json,
    so a later step of the same run is a different evaluation)."""
    return RANDOM if path == RANDOM else checkpoints.resolve(path).path


def conditions(config, checkpoint: str, overrides: dict) -> dict:
    """The env conditions to evaluate under: the ones the checkpoint was trained for (camera
    size and framing, layout, horizon; stored in its assets), else the config's; `overrides`
    (flags given by the user, None = not given) win over both."""
    stored = (
        {}
        if checkpoint == RANDOM
        else checkpoints.read_assets(checkpoints.resolve(checkpoint)).get("env", {})
    )
    chosen = config_base.env_conditions(config) | {
        k: v for k, v in stored.items() if k in config_base.ENV_CONDITIONS
    }
    return chosen | {k: v for k, v in overrides.items() if v is not None}


def prepare_folder(out: str, options: Options, create: bool = True) -> None:
    """Check that the evaluation stored in OUT is this one (resume), or create OUT."""
    path = os.path.join(out, "evaluation.json")
    if os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
        if stored != options.to_dict():
            changed = sorted(
                k
                for k in stored.keys() | options.to_dict().keys()
                if stored.get(k) != options.to_dict().get(k)
            )
            raise ConfigError(
                f"{out} holds an evaluation with other options ({', '.join(changed)} differ); "
                "pass another --out to start a new one"
            )
    elif create:
        os.makedirs(os.path.join(out, "settings"), exist_ok=True)
        files.write_json(path, options.to_dict())


def episode_seed(seed: int, episode: int, setting: str = "train") -> int:
    return EVAL_SEED_BASE + seed * 100_000 + _SEED_OFFSET.get(setting, 0) + episode


def run_setting(config, actor, params, setting, options: Options, out: str, videos: int, critic=None) -> dict:
    """Every seed x episode of one setting, in batches of env.num_envs episodes; `critic` a
    `loading.LoadedCritic` (values in the records) or None."""
    num_envs = actor.env.num_envs
    records = []
    result = {"setting": setting.setting, "category": setting.category, "split": setting.split, "seeds": {}}
    clock = time.perf_counter()
    for seed_index, seed in enumerate(options.seeds):
        per_episode = {
            "episode_seed": [],
            "success": [],
            "success_once": [],
            "return": [],
            "crashed_seeds": [],
        }
        for first in range(0, options.episodes, num_envs):
            count = min(num_envs, options.episodes - first)
            seeds = [
                episode_seed(seed, first + i, setting.setting) for i in range(num_envs)
            ]  # spare envs run, unscored
            keep = min(videos, count) if seed_index == 0 and first == 0 else 0
            rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), seeds[0])
            episodes = episodes_lib.run_episodes(
                actor,
                params,
                critic.params if critic else {},
                seeds,
                rng,
                options.temperature,
                record=True,
                keep_videos=keep,
                keep_images=False,
            )
            gamma, lam = (critic.gamma, critic.gae_lambda) if critic else (0.99, 0.95)
            columns = records_lib.episode_records(
                episodes.steps, episodes.bootstrap_value, episodes.success, seeds, gamma, lam,
                setting.setting, setting.category,
            )  # fmt: skip
            # A crashed or hung episode says nothing about the policy: counted, never scored.
            crashed = (
                np.zeros(num_envs, bool) if episodes.dropped is None else np.asarray(episodes.dropped, bool)
            )
            scored = (columns["env"] < count) & ~crashed[columns["env"]]
            records.append({key: value[scored] for key, value in columns.items()})
            kept = [i for i in range(count) if not crashed[i]]
            per_episode["episode_seed"] += [seeds[i] for i in kept]
            per_episode["crashed_seeds"] += [seeds[i] for i in range(count) if crashed[i]]
            for key, values in (
                ("success", episodes.success),
                ("success_once", episodes.success_once),
                ("return", episodes.returns),
            ):
                per_episode[key] += [float(values[i]) for i in kept]
            for k, clip in enumerate(episodes.frames):
                write_video(os.path.join(out, "videos", f"{setting.setting}_{k}.mp4"), clip)
        result["seeds"][str(seed)] = per_episode
    result["seconds"] = time.perf_counter() - clock
    # Before the setting's json, which marks the setting done (resume skips it).
    records_lib.write_records(
        os.path.join(out, records_lib.RECORDS_FOLDER, f"{setting.setting}.npz"), records_lib.concat(records)
    )
    files.write_json(os.path.join(out, "settings", f"{setting.setting}.json"), result)
    return result


def evaluate(config, checkpoint: str, settings, options: Options, out: str, log=print) -> dict[str, dict]:
    """Evaluate `checkpoint` on `settings` (SuiteEntry list) into OUT; settings already stored
    there are read back, not rerun. Returns {setting: result}."""
    prepare_folder(out, options, create=False)
    results, todo = {}, []
    for setting in settings:
        path = os.path.join(out, "settings", f"{setting.setting}.json")
        if os.path.isfile(path):
            with open(path) as f:
                results[setting.setting] = json.load(f)
        else:
            todo.append(setting)
    if results:
        log(f"[eval] {out}: {len(results)} setting(s) already done, {len(todo)} to run")
    if not todo:
        return results
    from rl2vla_jax.envs import make_vector_env  # the simulator: only when there is work
    from rl2vla_jax.envs.actions import FULL_RANGE_ACTION_STATS

    # An unreadable checkpoint fails here, before OUT exists.
    policy = loading.load(config, checkpoint, random_action_stats=FULL_RANGE_ACTION_STATS)
    prepare_folder(out, options)
    critic = policy.critic
    if critic is None:
        act = make_act(policy.model_config)
    else:
        act = make_act(policy.model_config, critic.module, critic.descriptor_mode, critic.descriptor_tokens)
        log(f"[eval] the checkpoint has a critic ({type(critic.module).__name__}): its values go to records/")

    # One set of simulator workers for all settings (switched in place on the cpu backend:
    # starting fresh workers took most of a 16-episode setting's time).
    env = None
    try:
        for index, setting in enumerate(todo):
            clock = time.perf_counter()
            env = make_vector_env(
                setting.setting,
                config.env.num_envs,
                backend=config.env.backend,
                image_size=options.image_size,
                max_episode_steps=options.max_episode_steps,
                seed=config.seed,
                suite=options.suite,
                env_options=config_base.env_options(dataclasses.asdict(options)),
                reuse=env,
            )
            actor = episodes_lib.Actor(
                env,
                act,
                policy.tokenizer,
                policy.decoder,
                policy.model_config.image_size,
                config.model.max_prompt_tokens,
                policy.model_config.llm.vocab_size,
                config.env.pipeline_groups,
            )
            result = run_setting(
                config, actor, policy.params, setting, options, out, config.eval.videos_per_setting, critic
            )
            results[setting.setting] = result
            rates = [np.mean(v["success"]) for v in result["seeds"].values() if v["success"]]
            crashed = sum(len(v["crashed_seeds"]) for v in result["seeds"].values())
            log(
                f"[eval] {index + 1}/{len(todo)} {setting.setting}: success {np.mean(rates) if rates else float('nan'):.3f} "
                f"({len(options.seeds)} seed(s) x {options.episodes} episodes, {time.perf_counter() - clock:.0f} s)"
                + (f"; {crashed} episode(s) crashed or hung, not scored" if crashed else "")
            )
    finally:
        if env is not None:
            env.close()
    return results
