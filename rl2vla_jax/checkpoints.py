"""One layout and one resolver for every checkpoint: converted, SFT and RL alike.

  <root>/checkpoints/<step>/      an orbax CheckpointManager directory; <root> is a run's workdir
                                  or the converter's --out (which writes step 0)
    params       {"policy": full OpenVLA params (base + LoRA), "critic": ... when there is one}:
                 loadable alone for inference
    train_state  whatever resume needs (optimizer state, step / iteration, rng); absent for
                 converted checkpoints
    assets       JSON: model_config, norm_stats, config (the run's, as JSON), env (the camera
                 `image_size` and `max_episode_steps` the policy was trained under, when known),
                 tokenizer (the tokenizer.model bytes, base64: moving the directory breaks nothing)

Orbax writes each step into a temporary directory and renames it when complete, so a run
killed mid-save leaves the previous step intact and no half-written one. A step that cannot be
restored is moved aside by `restore_latest` (never deleted: it is the user's data) and the run
continues from the previous intact step.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from typing import Any

import jax
import orbax.checkpoint as ocp

from rl2vla_jax.models.config import OpenVLAConfig
from rl2vla_jax.validation import ConfigError

ITEMS = ("params", "train_state", "assets")
CHECKPOINTS = "checkpoints"  # <root>/checkpoints/<step>


class CheckpointError(ConfigError):
    """A checkpoint that is missing or cannot be read; the message names the path or step."""


def manager(directory: str, max_to_keep: int | None = 3, create: bool = True) -> ocp.CheckpointManager:
    """The manager of `<root>/checkpoints` (readers pass create=False). Its item handlers are
    named up front: orbax then reads any item without warning about the others."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=create, enable_async_checkpointing=False
    )
    handlers = {
        "params": ocp.StandardCheckpointHandler(),
        "train_state": ocp.StandardCheckpointHandler(),
        "assets": ocp.JsonCheckpointHandler(),
    }
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _OrbaxThreadEchoes) for f in absl_logger.filters):
        absl_logger.addFilter(_OrbaxThreadEchoes())
    return ocp.CheckpointManager(os.path.abspath(directory), item_handlers=handlers, options=options)


def reader(directory: str) -> ocp.CheckpointManager:
    """A manager that only reads: it creates, saves and deletes nothing."""
    return manager(directory, max_to_keep=None, create=False)


# ----------------------------------------------------------------------------- the resolver


@dataclasses.dataclass(frozen=True)
class Step:
    directory: str  # the manager's directory, <root>/checkpoints
    step: int

    @property
    def path(self) -> str:
        return os.path.join(self.directory, str(self.step))


def saved_steps(directory: str) -> list[int]:
    """Completed steps, ascending (orbax's temporary and moved-aside directories are not)."""
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def resolve(path: str) -> Step:
    """The step to load from a root (run directory or converter output: its latest step), its
    `checkpoints/` directory (the latest step), or one step directory (that step)."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    name = os.path.basename(path)
    if name.isdigit() and any(os.path.exists(os.path.join(path, item)) for item in ITEMS):
        return Step(os.path.dirname(path), int(name))
    directory = os.path.join(path, CHECKPOINTS) if os.path.isdir(os.path.join(path, CHECKPOINTS)) else path
    steps = saved_steps(directory)
    if steps:
        return Step(directory, steps[-1])
    if os.path.isfile(os.path.join(path, "assets", "model_config.json")):
        raise CheckpointError(
            f"{path} is a checkpoint in the old layout (params/ + assets/); convert it again with "
            "`python -m rl2vla_jax.convert_openvla` or rerun the SFT that wrote it"
        )
    raise CheckpointError(
        f"{path} holds no checkpoint: expected a run directory, its checkpoints/ or one step"
    )


# ----------------------------------------------------------------------------- assets


def make_assets(
    model_config: OpenVLAConfig,
    norm_stats: dict | None,
    tokenizer_path: str | None,
    config_json: str | None = None,
    env: dict | None = None,
    **extra,
) -> dict[str, Any]:
    """The `assets` item. The tokenizer travels inside it, so a checkpoint is relocatable."""
    tokenizer = None
    if tokenizer_path:
        with open(tokenizer_path, "rb") as f:
            data = f.read()
        tokenizer = {"sha256": hashlib.sha256(data).hexdigest(), "base64": base64.b64encode(data).decode()}
    return {
        "model_config": model_config.to_dict(),
        "norm_stats": norm_stats or {},
        "tokenizer": tokenizer,
        "config": config_json,
        "env": env or {},
        **extra,
    }


def tokenizer_file(tokenizer: dict | None, cache_dir: str | None = None) -> str | None:
    """The assets' tokenizer as a file (SentencePiece and the data workers take a path), cached
    by content so every load of the same tokenizer shares one file."""
    if not tokenizer:
        return None
    cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "rl2vla_jax", "tokenizers")
    path = os.path.join(cache_dir, f"{tokenizer['sha256']}.model")
    if not os.path.isfile(path):
        os.makedirs(cache_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(tokenizer["base64"]))
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return path


def _public(assets: dict[str, Any]) -> dict[str, Any]:
    """Assets as callers use them: the tokenizer as a path (or None)."""
    return {**assets, "tokenizer": tokenizer_file(assets.get("tokenizer"))}


# ----------------------------------------------------------------------------- save / restore


def save(mgr: ocp.CheckpointManager, step: int, params, assets: dict, train_state=None) -> None:
    # Assets that are not JSON fail here, before any writer starts: orbax saves the items
    # concurrently, and a failing JSON item left the params writes running into a folder the
    # caller was already removing (a stray `<out>.tmp-*` after a failed conversion).
    json.dumps(assets)
    items = {"params": ocp.args.StandardSave(params), "assets": ocp.args.JsonSave(assets)}
    if train_state is not None:
        items["train_state"] = ocp.args.StandardSave(train_state)
    try:
        mgr.save(step, args=ocp.args.Composite(**items))
        mgr.wait_until_finished()
    except OSError:  # disk full, quota, a vanished mount: the caller reports it in one line
        _wait_for_writers(mgr)
        raise


def _wait_for_writers(mgr: ocp.CheckpointManager) -> None:
    """Orbax writes a step under `<step>.orbax-checkpoint-tmp` and renames it when complete, so
    the older steps are untouched; the unfinished folder is left for orbax, which replaces it
    when it saves that step again. Removing it here raced tensorstore writes still in flight
    (pages of NOT_FOUND errors at exit)."""
    try:
        mgr.wait_until_finished()
    except Exception:  # noqa: BLE001  (the same failure, raised again by the other writers)
        pass


class _OrbaxThreadEchoes:
    """Orbax's writer threads log any exception they raise as a multi-page ERROR traceback,
    then the save raises that same exception to its caller (saves here are synchronous), which
    reports it in one line: the echo is dropped."""

    def filter(self, record) -> bool:
        return "_SignalingThread.run() raised an exception" not in record.getMessage()


def abstract(tree, shardings=None):
    """ShapeDtypeStructs to restore into, laid out by `shardings` (a tree matching `tree`),
    else on the first local device."""
    if shardings is None:
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        shardings = jax.tree.map(lambda _: device, tree)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def _gist(err: BaseException) -> str:
    """The root cause in one line: orbax wraps tensorstore's precise message (which file, which
    byte range) in a generic one that ends in a multi-line dump of the store's spec."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = (lines[0] if lines else "").split(" See full TensorStore details")[0]
    return f"{type(err).__name__}: {text[:400]}"


def restore(mgr: ocp.CheckpointManager, step: int, params_template, train_state_template=None):
    """(params, train_state or None, assets) of `step`, restored into the templates (abstract
    arrays carrying the target shardings). Raises CheckpointError naming the step."""
    items = {"params": ocp.args.StandardRestore(params_template), "assets": ocp.args.JsonRestore()}
    if train_state_template is not None:
        items["train_state"] = ocp.args.StandardRestore(train_state_template)
    # Before the restore, not in the except clause: the abandoned reads can fire while the
    # failure is still unwinding through orbax, ahead of any handler here (CI saw two such
    # tracebacks above a CLI's one-line error).
    _quiet_abandoned_reads()
    try:
        restored = mgr.restore(step, args=ocp.args.Composite(**items))
    except Exception as err:  # tensorstore, orbax and json fail in many ways; all mean unreadable
        raise CheckpointError(
            f"checkpoint step {step} in {mgr.directory} cannot be restored ({_gist(err)})"
        ) from err
    train_state = restored.train_state if train_state_template is not None else None
    return restored.params, train_state, _public(restored.assets)


def _quiet_abandoned_reads() -> None:
    """When one array of a restore fails, orbax gives up on the item's other reads: their
    coroutines raise when collected, and tensorstore's completions hit the closed event loop
    ('Event loop is closed'), each through sys.unraisablehook as a multi-page traceback long
    after the one-line error or warning. Only those (raised in orbax or asyncio code) are
    dropped; every other unraisable exception still reaches the previous hook. Installed once,
    before the first restore, and kept for the process: the abandoned reads can fire before the
    failure reaches any handler, and later restores would need it again."""
    previous = sys.unraisablehook
    if getattr(previous, "quiets_abandoned_reads", False):
        return

    def hook(unraisable):
        files = [frame.filename for frame in traceback.extract_tb(unraisable.exc_traceback)]
        if not any(
            f"{os.sep}orbax{os.sep}" in f or f.endswith(os.path.join("asyncio", "base_events.py"))
            for f in files
        ):
            previous(unraisable)

    hook.quiets_abandoned_reads = True
    sys.unraisablehook = hook


def restore_latest(mgr: ocp.CheckpointManager, params_template, train_state_template, log=None):
    """Resume: (step, params, train_state, assets) of the newest step that restores, or None
    when there is no step. Newer steps that fail are moved aside with one warning line, but
    only once an older step restored with the same templates: when every step fails the
    templates are what is wrong (e.g. a changed config), and nothing is moved."""
    failed = []
    for step in sorted(mgr.all_steps(), reverse=True):
        try:
            restored = restore(mgr, step, params_template, train_state_template)
        except CheckpointError as err:
            failed.append((step, err))
            continue
        if failed:
            moved = [_move_aside(str(mgr.directory), bad) for bad, _ in failed]
            mgr.reload()
            message = (
                f"warning: {failed[0][1]}; moved it to {moved[0]}"
                + (f" (and {len(moved) - 1} newer step(s) likewise)" if len(moved) > 1 else "")
                + f"; resuming from step {step}"
            )
            (log or functools.partial(print, file=sys.stderr, flush=True))(message)
        return (step, *restored)
    if failed:
        step, err = failed[0]
        raise CheckpointError(f"{err}; no earlier step restores either") from err
    return None


def _move_aside(directory: str, step: int) -> str:
    """A corrupt step out of orbax's way (a non-numeric name), so that step can be saved again."""
    target = os.path.join(directory, f"{step}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    if jax.process_index() == 0:
        os.rename(os.path.join(directory, str(step)), target)
    return target


# ----------------------------------------------------------------------------- inference


def read_assets(step: Step) -> dict[str, Any]:
    _quiet_abandoned_reads()
    mgr = reader(step.directory)
    try:
        assets = mgr.restore(step.step, args=ocp.args.Composite(assets=ocp.args.JsonRestore())).assets
    except Exception as err:  # see restore
        raise CheckpointError(
            f"checkpoint step {step.step} in {step.directory} cannot be read ({_gist(err)})"
        ) from err
    finally:
        mgr.close()
    return _public(assets)


def load_policy(path: str) -> tuple[Any, OpenVLAConfig, dict[str, Any]]:
    """(policy params, model config, assets) of the step `resolve(path)` names, with assets =
    {"norm_stats", "tokenizer" (a file path or None), "model_config", "config", "env", ...}."""
    params, model_config, assets = load_params(path)
    return params["policy"], model_config, assets


def load_params(path: str) -> tuple[dict[str, Any], OpenVLAConfig, dict[str, Any]]:
    """`load_policy` with the whole `params` item: {"policy": ..., "critic": ... when the run
    had one}."""
    step = resolve(path)
    mgr = reader(step.directory)
    try:
        try:
            metadata = mgr.item_metadata(step.step).params
            metadata = getattr(metadata, "tree", metadata)
            shapes = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), metadata)
        except Exception as err:  # see restore
            raise CheckpointError(
                f"checkpoint step {step.step} in {step.directory} cannot be read ({_gist(err)})"
            ) from err
        params, _, assets = restore(mgr, step.step, abstract(shapes))
    finally:
        mgr.close()
    return params, OpenVLAConfig.from_dict(assets["model_config"]), assets


def load_model_config(path: str) -> OpenVLAConfig | None:
    """The model config of an `init_from` checkpoint (None for an empty path), without its params."""
    if not path:
        return None
    return OpenVLAConfig.from_dict(read_assets(resolve(path))["model_config"])


def write_converted(out: str, params, assets: dict[str, Any]) -> None:
    """Step 0 of a new root `out`, atomically: written under a temporary sibling and renamed,
    so a failed conversion leaves nothing at `out`."""
    out = os.path.abspath(out)
    if os.path.exists(out):
        raise FileExistsError(f"{out} already exists")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(out) + ".tmp-", dir=parent)
    try:
        mgr = manager(os.path.join(tmp, CHECKPOINTS), max_to_keep=None)
        try:
            save(mgr, 0, {"policy": params}, assets)
        finally:
            mgr.close()  # waits for orbax's writer threads, so none writes into tmp after rmtree
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def with_lora(params, model_cfg, adapter_dir: str | None, rng: jax.Array):
    """Params of a checkpoint with LoRA factors: a PEFT adapter's (`adapter_dir`), or fresh ones
    of `model_cfg.lora` (factors already present are kept)."""
    if adapter_dir:
        from rl2vla_jax.convert.peft_adapter import import_adapter  # PEFT files: the converter's job

        try:
            return import_adapter(adapter_dir, params, model_cfg.replace(lora=None))
        except (OSError, ValueError, KeyError) as err:  # missing files, wrong rank or targets
            message = str(err).strip("'\"")
            raise CheckpointError(f"adapter {adapter_dir} does not fit the model: {message}") from None
    from rl2vla_jax.models.init import add_lora

    return add_lora(params, model_cfg.replace(lora=None), model_cfg.lora, rng)
