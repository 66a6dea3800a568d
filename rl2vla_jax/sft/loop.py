"""The SFT host loop: grain batches -> one jitted step; validation; checkpoints.

Checkpoints are `rl2vla_jax.checkpoints`' one layout, <workdir>/checkpoints/<step>: `params`
(the policy, LoRA factors included), `train_state` (AdamW state and step, so a resumed run
continues bit for bit) and `assets` (model config, the dataset's statistics as norm_stats, the
tokenizer), so any of them is a valid `python -m rl2vla_jax.train --config.init_from=...` and
`python -m rl2vla_jax.eval --checkpoint=...`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time

import jax
import numpy as np
from tqdm import tqdm

from rl2vla_jax import checkpoints, config_base
from rl2vla_jax import mesh as mesh_lib
from rl2vla_jax.data import demos
from rl2vla_jax.data.norm_stats import select_stats
from rl2vla_jax.data.prompt import load_tokenizer, tiny_tokenizer
from rl2vla_jax.models.init import init_params, param_shapes
from rl2vla_jax.models.trainable import split_trainable
from rl2vla_jax.policy import loading
from rl2vla_jax.sft import data as sft_data
from rl2vla_jax.sft import step as sft_step
from rl2vla_jax.validation import ConfigError

KEEP_CHECKPOINTS = 3


def validate(config) -> None:
    """One-line errors for SFT settings that cannot work (before anything heavy happens)."""
    sft = config.sft
    if sft.steps <= 0 or sft.batch_size <= 0:
        raise ConfigError(
            f"config.sft.steps={sft.steps} and config.sft.batch_size={sft.batch_size} must be > 0"
        )
    if not 0.0 <= config.val_fraction < 1.0:
        raise ConfigError(f"config.val_fraction={config.val_fraction} must be in [0, 1)")
    if sft.get("warmup_steps", 0) < 0:
        raise ConfigError(f"config.sft.warmup_steps={sft.warmup_steps} must be >= 0")
    if sft.get("lr_schedule", "constant") not in ("constant", "cosine"):
        raise ConfigError(f"config.sft.lr_schedule={sft.lr_schedule!r} must be 'constant' or 'cosine'")
    if sft.learning_rate <= 0:
        raise ConfigError(f"config.sft.learning_rate={sft.learning_rate} must be > 0")
    if not os.path.isfile(os.path.join(config.data_dir, demos.MANIFEST)):
        raise FileNotFoundError(
            f"no demonstrations in {config.data_dir!r} (no {demos.MANIFEST}); collect them with "
            f"`python -m rl2vla_jax.collect_demos --config=configs/sft.py --out={config.data_dir}`"
        )


def _start_point(config, model_cfg, tx, patterns, mgr, template):
    """Start order: this workdir's latest intact checkpoint (params, AdamW state and step; a
    corrupt newer step is moved aside with a warning), then `config.init_from` (a converted
    OpenVLA or another SFT run), then a random init."""
    _check_resumable(config, str(mgr.directory))
    restored = checkpoints.restore_latest(
        mgr, {"policy": template.policy_params}, {"step": template.step, "opt_state": template.opt_state}
    )
    if restored is not None:
        step, params, train_state, assets = restored
        trainable, frozen = split_trainable(params["policy"], patterns)
        state = sft_step.SFTState(trainable=trainable, frozen=frozen, **train_state)
        return state, assets, f"resumed from {mgr.directory}/{step}"
    if config.init_from:
        params, _, assets = checkpoints.load_policy(config.init_from)
        params, _ = checkpoints.with_lora(params, model_cfg, config.adapter, jax.random.PRNGKey(config.seed))
        origin = f"initialised from {config.init_from}"
    else:
        params = init_params(
            model_cfg, jax.random.PRNGKey(config.seed), **loading.random_init_options(config)
        )
        assets = {}
        origin = "random initialisation"
    return sft_step.create_state(*split_trainable(params, patterns), tx), assets, origin


RESUME_FIXED = ("sft.lr_schedule", "sft.learning_rate", "sft.warmup_steps", "sft.steps", "optim.weight_decay")


def _optimizer_settings(config) -> dict:
    """What a resumed run cannot change: the learning rate and weight decay live in the saved
    optimizer state (inject_hyperparams), so a new value would be silently ignored; warm-up and
    schedule shape the optimizer itself; under the cosine schedule `steps` sets the decay (under
    the constant one it only says where the run stops, so extending a run stays allowed)."""
    sft, optim = config["sft"], _section(config, "optim")
    values = {
        "sft.lr_schedule": sft.get("lr_schedule", "constant"),
        "sft.learning_rate": sft.get("learning_rate"),
        "sft.warmup_steps": sft.get("warmup_steps", 0),
        "optim.weight_decay": optim.get("weight_decay"),
    }
    if values["sft.lr_schedule"] == "cosine":
        values["sft.steps"] = sft.get("steps")
    return values


def _check_resumable(config, directory: str) -> None:
    """Refuse, in one line and before restoring anything, a resume whose optimizer settings
    differ from the run's (checked on the newest step whose config reads)."""
    for step in reversed(checkpoints.saved_steps(directory)):
        checkpoint = checkpoints.Step(directory, step)
        try:
            saved = json.loads(checkpoints.read_assets(checkpoint).get("config") or "{}")
        except checkpoints.CheckpointError:
            continue  # a corrupt step: restore_latest moves it aside and resumes an older one
        break
    else:
        return
    if "sft" not in saved:
        return  # a checkpoint without its config (written before configs were recorded)
    before, now = _optimizer_settings(saved), _optimizer_settings(config)
    changed = [k for k in RESUME_FIXED if before.get(k, "unset") != now.get(k, "unset")]
    if not changed:
        return
    current = {k: _get(config, k) for k in changed}
    run = {k: _get(saved, k) for k in changed}
    raise ConfigError(
        f"resuming {checkpoint.path}: {', '.join(f'config.{k}={current[k]!r}' for k in changed)} "
        f"differs from the run's {', '.join(f'{k}={run[k]!r}' for k in changed)}, which a resume "
        "cannot change (the optimizer state holds them, or they set its schedule); resume with the "
        "run's values, or start a new --workdir with --config.init_from pointing at this run"
    )


def _section(config, name: str):
    section = config.get(name)
    return {} if section is None else section


def _get(config, dotted: str):
    section, key = dotted.split(".")
    return _section(config, section).get(key)


def _evaluate(evaluate, state, val_arrays, batch_size, majority_bins) -> dict[str, float]:
    totals = None
    for batch in sft_step.padded_batches(val_arrays, batch_size):
        sums = jax.device_get(evaluate(state.trainable, state.frozen, batch))
        totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
    count = float(totals.pop("count"))
    dims = totals.pop("dim_accuracy") / count
    greedy = totals.pop("greedy_dim_accuracy") / count
    greedy_l1 = totals.pop("greedy_dim_l1") / count
    metrics = {f"val_{k}": float(v) / count for k, v in totals.items()}
    metrics |= {f"val_accuracy_dim{d}": float(dims[d]) for d in range(len(dims))}
    # Acting accuracy (tokens decoded from the policy's own previous tokens): the figure that
    # predicts closed-loop behaviour, compared per dimension with the majority bin below.
    metrics["val_greedy_accuracy"] = float(np.mean(greedy))
    metrics["val_greedy_l1"] = float(np.mean(greedy_l1))
    metrics |= {f"val_greedy_accuracy_dim{d}": float(greedy[d]) for d in range(len(greedy))}
    # The baseline that matters beside chance (1/256): always predicting the train split's
    # most frequent bin of each dimension.
    majority = np.mean(val_arrays["tokens"] == majority_bins, axis=0)
    metrics["val_majority_accuracy"] = float(np.mean(majority))
    metrics |= {f"val_majority_accuracy_dim{d}": float(majority[d]) for d in range(len(majority))}
    metrics["val_examples"] = count
    return metrics


def demo_conditions(data_dir: str) -> dict:
    """The camera the demonstrations were recorded with (collect_demos writes it), which the
    policy is then trained for: it wins over the SFT config's env section."""
    path = os.path.join(data_dir, "collection.json")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        collection = json.load(f)
    return {key: collection[key] for key in ("image_size", "camera", "layout") if key in collection}


def train(config, workdir: str) -> dict:
    validate(config)
    os.makedirs(workdir, exist_ok=True)
    model_cfg = loading.model_config(config, checkpoints.load_model_config(config.init_from))
    mesh = mesh_lib.make_mesh(config.mesh.data, config.mesh.fsdp)
    mesh_lib.check_batch_split(mesh, config.sft.batch_size, "config.sft.batch_size")
    tx = sft_step.make_optimizer(
        config.sft.learning_rate,
        config.optim.weight_decay,
        config.optim.max_grad_norm,
        int(config.sft.get("warmup_steps", 0)),
        config.sft.steps if config.sft.get("lr_schedule", "constant") == "cosine" else 0,
    )
    patterns = (".*",) if config.sft.train_all_params else config.trainable
    abstract = jax.eval_shape(
        lambda p: sft_step.create_state(*split_trainable(p, patterns), tx), param_shapes(model_cfg)
    )
    state_sharding = mesh_lib.param_sharding(mesh, abstract, config.mesh.fsdp_min_size)
    mgr = checkpoints.manager(os.path.join(workdir, checkpoints.CHECKPOINTS), max_to_keep=KEEP_CHECKPOINTS)
    state, init_assets, origin = _start_point(
        config, model_cfg, tx, patterns, mgr, checkpoints.abstract(abstract, state_sharding)
    )
    start = int(state.step)
    tokenizer_path = init_assets.get("tokenizer") or tiny_tokenizer()
    eos_id = int(load_tokenizer(tokenizer_path).eos_id())

    with open(os.path.join(config.data_dir, demos.STATISTICS)) as f:
        norm_stats = json.load(f)
    action_stats = select_stats(norm_stats, config.unnorm_key or None)
    split = sft_data.split_episodes(config.data_dir, config.val_fraction, config.seed)
    to_example = sft_data.StepToExample(
        tokenizer_path,
        action_stats,
        model_cfg.action_token_end,
        model_cfg.image_size,
        config.model.max_prompt_tokens,
        model_cfg.llm.vocab_size,
    )
    train_bins = to_example.action_bins(split.actions[split.train_indices])
    majority_bins = np.array([np.bincount(train_bins[:, d], minlength=256).argmax() for d in range(7)])
    val_arrays = (
        sft_data.validation_arrays(
            config.data_dir, split.val_indices, to_example, config.sft.val_max_examples
        )
        if len(split.val_indices)
        else None
    )
    stream = sft_data.train_stream(
        config.data_dir,
        split.train_indices,
        dataclasses.replace(to_example, augment=bool(config.sft.augment)),
        config.sft.batch_size,
        config.seed,
        start_step=start,
        num_threads=config.sft.num_threads,
        num_workers=config.sft.num_workers,
    )

    conditions = config_base.env_conditions(config) | demo_conditions(config.data_dir)
    assets = checkpoints.make_assets(model_cfg, norm_stats, tokenizer_path, config.to_json(), conditions)
    state = mesh_lib.place(state, state_sharding)
    step_fn = jax.jit(
        functools.partial(sft_step.train_step, model_cfg, tx, eos_id),
        out_shardings=(state_sharding, mesh_lib.replicated(mesh)),
        donate_argnums=0,
    )
    evaluate = jax.jit(functools.partial(sft_step.eval_sums, model_cfg, eos_id))

    def shard(batch):
        return jax.device_put(batch, mesh_lib.env_axis_sharding(mesh, batch, env_axis=0))

    num_trainable = sum(int(np.prod(v.shape)) for v in state.trainable.values())
    print(
        f"[sft] {origin}; {len(split.train_episodes)} train / {len(split.val_episodes)} validation episodes "
        f"({len(split.train_indices)} / {len(split.val_indices)} steps); {num_trainable:,} trainable params; "
        f"{jax.device_count()} device(s), mesh {dict(mesh.shape)}",
        flush=True,
    )
    rows, log_path = [], os.path.join(workdir, "metrics.jsonl")
    every = config.sft.eval_every
    running: dict[str, list[float]] = {}
    clock, data_wait = time.perf_counter(), 0.0
    bar = tqdm(
        range(start, config.sft.steps), initial=start, total=config.sft.steps, desc="sft", dynamic_ncols=True
    )
    final = None
    for step in bar:
        wait = time.perf_counter()
        batch = shard(next(stream))
        data_wait += time.perf_counter() - wait
        state, metrics = step_fn(state, batch)
        done = step + 1
        if done % every == 0 or done == config.sft.steps:
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            for key, value in metrics.items():
                running.setdefault(key, []).append(value)
            if not all(math.isfinite(v) for v in metrics.values()):
                raise FloatingPointError(f"non-finite SFT metrics at step {done}: {metrics}")
            row = {"step": done, **{f"train_{k}": v for k, v in metrics.items()}}
            if val_arrays is not None:
                row |= _evaluate(evaluate, state, val_arrays, config.sft.eval_batch_size, majority_bins)
            elapsed = time.perf_counter() - clock
            row |= {"steps_per_s": (done - start) / elapsed, "data_wait_fraction": data_wait / elapsed}
            rows.append(row)
            with open(log_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            bar.set_postfix(
                loss=f"{row['train_loss']:.3f}",
                val_loss=f"{row.get('val_loss', float('nan')):.3f}",
                val_acc=f"{row.get('val_accuracy', float('nan')):.3f}",
                greedy_acc=f"{row.get('val_greedy_accuracy', float('nan')):.3f}",
            )
        if done % config.sft.checkpoint_every == 0 or done == config.sft.steps:
            checkpoints.save(
                mgr,
                done,
                {"policy": state.policy_params},
                assets,
                {"step": state.step, "opt_state": state.opt_state},
            )
            final = os.path.join(mgr.directory, str(done))
    bar.close()
    mgr.close()
    if final is None:  # nothing left to do: the workdir already holds the last step
        final = os.path.join(mgr.directory, str(start))
    last = rows[-1] if rows else {}
    if last:
        print(
            f"[sft] step {last['step']}: train loss {last['train_loss']:.4f}; validation loss "
            f"{last.get('val_loss', float('nan')):.4f}, action-token accuracy {last.get('val_accuracy', float('nan')):.3f} "
            f"teacher-forced, {last.get('val_greedy_accuracy', float('nan')):.3f} acting greedily "
            f"(chance 1/256 = 0.004, majority bin {last.get('val_majority_accuracy', float('nan')):.3f})",
            flush=True,
        )
    print(
        f"[sft] checkpoint: {final}  (use --config.init_from={final} or eval --checkpoint={final})",
        flush=True,
    )
    return {"rows": rows, "checkpoint": final, "compiles": step_fn._cache_size(), "split": split}
