"""The one checkpoint layout: round trips, the resolver, relocatability, corrupt steps."""

import asyncio
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from configs import film_evi
from rl2vla_jax import checkpoints
from rl2vla_jax import mesh as mesh_lib
from rl2vla_jax.data.prompt import load_tokenizer, tiny_tokenizer
from rl2vla_jax.models.config import get_preset
from rl2vla_jax.policy import loading
from rl2vla_jax.train import builders, hparams

NORM_STATS = {"bridge_orig": {"action": {"q01": [-0.3] * 7, "q99": [0.7] * 7}}}


def truncate_newest_params(directory: str) -> str:
    """Cut the largest data file of the newest step's params item to half its size."""
    params_dir = os.path.join(directory, str(checkpoints.saved_steps(directory)[-1]), "params")
    files = [os.path.join(d, f) for d, _, names in os.walk(params_dir) for f in names]
    largest = max(files, key=os.path.getsize)
    with open(largest, "r+b") as f:
        f.truncate(os.path.getsize(largest) // 2)
    return largest


def _random_params(seed: int):
    rng = np.random.default_rng(seed)
    return {
        "llm": {
            "kernel": rng.normal(size=(17, 11)).astype(np.float32),
            "bias": rng.normal(size=(29,)).astype(np.float32),
        },
        "vision": {"pos": rng.normal(size=(3, 13)).astype(np.float32)},
    }


@pytest.fixture
def converted_root(tmp_path):
    """Step 0 of a converted-style checkpoint whose tokenizer came from a file we then delete."""
    source = tmp_path / "hf" / "tokenizer.model"
    source.parent.mkdir()
    shutil.copy(tiny_tokenizer(), source)
    assets = checkpoints.make_assets(get_preset("tiny"), NORM_STATS, str(source), hf_config={"a": 7})
    root = tmp_path / "converted"
    params = _random_params(0)
    checkpoints.write_converted(str(root), params, assets)
    return root, params, source


def test_converted_round_trip_and_relocatable(converted_root, tmp_path):
    root, params, source = converted_root
    assert sorted(os.listdir(root / "checkpoints")) == ["0"]
    assert {"assets", "params"} <= set(os.listdir(root / "checkpoints" / "0"))
    assert "train_state" not in os.listdir(root / "checkpoints" / "0")
    original = load_tokenizer(str(source))
    # Moved elsewhere, its tokenizer source gone: it still loads, with the same tokenizer.
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(root), str(moved))
    shutil.rmtree(source.parent)
    loaded, model_cfg, assets = checkpoints.load_policy(str(moved))
    assert model_cfg == get_preset("tiny")
    assert jax.tree.structure(loaded) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert assets["norm_stats"] == NORM_STATS and assets["hf_config"] == {"a": 7}
    assert assets["env"] == {} and not os.path.exists(source)
    tokenizer = load_tokenizer(assets["tokenizer"])
    text = "put the carrot on the plate"
    assert tokenizer.encode(text) == original.encode(text) and tokenizer.vocab_size() == original.vocab_size()


def test_failed_conversion_leaves_nothing(tmp_path):
    assets = {"model_config": object()}  # not JSON: the save fails after params are written
    with pytest.raises(TypeError):
        checkpoints.write_converted(str(tmp_path / "out"), _random_params(1), assets)
    assert os.listdir(tmp_path) == []


def test_resolver_accepts_root_checkpoints_dir_and_step(tmp_path):
    root = tmp_path / "run"
    mgr = checkpoints.manager(str(root / "checkpoints"))
    assets = checkpoints.make_assets(get_preset("tiny"), NORM_STATS, None)
    for step in (3, 7):
        checkpoints.save(mgr, step, {"policy": _random_params(step)}, assets)
    directory = str(root / "checkpoints")
    assert checkpoints.resolve(str(root)) == checkpoints.Step(directory, 7)
    assert checkpoints.resolve(directory) == checkpoints.Step(directory, 7)
    assert checkpoints.resolve(str(root / "checkpoints" / "3")) == checkpoints.Step(directory, 3)
    assert checkpoints.resolve(str(root / "checkpoints" / "3")).path == os.path.join(directory, "3")
    params, _, _ = checkpoints.load_policy(str(root / "checkpoints" / "3"))
    np.testing.assert_array_equal(params["llm"]["kernel"], _random_params(3)["llm"]["kernel"])
    with pytest.raises(checkpoints.CheckpointError, match=f"checkpoint {tmp_path}/none does not exist"):
        checkpoints.resolve(str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(checkpoints.CheckpointError, match="holds no checkpoint"):
        checkpoints.resolve(str(tmp_path / "empty"))
    (tmp_path / "old" / "assets").mkdir(parents=True)
    (tmp_path / "old" / "assets" / "model_config.json").write_text("{}")
    with pytest.raises(checkpoints.CheckpointError, match="old layout"):
        checkpoints.resolve(str(tmp_path / "old"))


def _rl_setup():
    config = film_evi.get_config()
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
    critic = builders.make_critic(hp, config)
    return config, hp, model_cfg, critic


def _templates(config, hp, model_cfg, critic, mesh):
    abstract = builders.abstract_state(config, hp, model_cfg, critic)
    return builders.checkpoint_items(checkpoints.abstract(abstract, mesh_lib.param_sharding(mesh, abstract)))


def test_rl_state_round_trip_into_abstract_sharded_template(tmp_path):
    config, hp, model_cfg, critic = _rl_setup()
    state = builders.initial_state(config, hp, model_cfg, critic).replace(iteration=np.int32(5))
    state = state.replace(rng=jax.random.PRNGKey(23))
    mgr = checkpoints.manager(str(tmp_path / "checkpoints"))
    assets = checkpoints.make_assets(
        model_cfg, NORM_STATS, tiny_tokenizer(), config.to_json(), {"image_size": 41}
    )
    params, train_state = builders.checkpoint_items(state)
    checkpoints.save(mgr, 5, params, assets, train_state)
    mesh = mesh_lib.make_mesh(data=2, fsdp=1)
    params_template, train_state_template = _templates(config, hp, model_cfg, critic, mesh)
    step, params, train_state, restored_assets = checkpoints.restore_latest(
        mgr, params_template, train_state_template
    )
    restored = builders.from_checkpoint_items(params, train_state, config.trainable)
    assert step == 5 and int(restored.iteration) == 5
    assert (
        restored_assets["env"] == {"image_size": 41}
        and json.loads(restored_assets["config"])["name"] == config.name
    )
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert a.sharding.mesh == mesh  # restored straight into the target layout
    assert restored.critic and restored.trainable.keys() == state.trainable.keys()


def test_corrupt_newest_step_is_moved_aside_and_the_previous_one_used(tmp_path):
    config, hp, model_cfg, critic = _rl_setup()
    state = builders.initial_state(config, hp, model_cfg, critic)
    mgr = checkpoints.manager(str(tmp_path / "checkpoints"))
    assets = checkpoints.make_assets(model_cfg, NORM_STATS, None)
    for step in (1, 2):
        params, train_state = builders.checkpoint_items(state.replace(iteration=np.int32(step)))
        checkpoints.save(mgr, step, params, assets, train_state)
    truncate_newest_params(str(tmp_path / "checkpoints"))
    mesh = mesh_lib.make_mesh(data=1, fsdp=1, devices=jax.devices()[:1])
    templates = _templates(config, hp, model_cfg, critic, mesh)
    # Strict restore (inference, config.resume) names the step.
    with pytest.raises(checkpoints.CheckpointError, match="checkpoint step 2 in .* cannot be restored"):
        checkpoints.restore(mgr, 2, *templates)
    lines = []
    step, _, train_state, _ = checkpoints.restore_latest(mgr, *templates, log=lines.append)
    assert step == 1 and int(train_state["iteration"]) == 1
    assert len(lines) == 1 and lines[0].startswith("warning: checkpoint step 2 in ")
    assert lines[0].endswith("; resuming from step 1")
    aside = [name for name in os.listdir(tmp_path / "checkpoints") if name.startswith("2.corrupt-")]
    assert len(aside) == 1 and f"moved it to {tmp_path}/checkpoints/{aside[0]}" in lines[0]
    assert checkpoints.saved_steps(str(tmp_path / "checkpoints")) == [1]
    # The step number is free again.
    params, train_state = builders.checkpoint_items(state.replace(iteration=np.int32(2)))
    checkpoints.save(mgr, 2, params, assets, train_state)
    assert checkpoints.restore_latest(mgr, *templates)[0] == 2


def test_when_every_step_fails_nothing_is_moved(tmp_path):
    mgr = checkpoints.manager(str(tmp_path / "checkpoints"))
    assets = checkpoints.make_assets(get_preset("tiny"), NORM_STATS, None)
    for step in (1, 2):
        checkpoints.save(mgr, step, {"policy": _random_params(step)}, assets)
    other_tree = _random_params(0) | {"extra": np.zeros(5, np.float32)}
    wrong = checkpoints.abstract(
        {"policy": jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), other_tree)}
    )
    with pytest.raises(checkpoints.CheckpointError, match="checkpoint step 2 .* no earlier step restores"):
        checkpoints.restore_latest(mgr, wrong, None)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]


class _FailingManager:
    """A restore that fails the way orbax does when one array is unreadable: an abandoned read's
    completion hits the closed event loop (an unraisable exception raised in asyncio) while the
    failure is still on its way out, before any handler in `checkpoints.restore` runs."""

    directory = "/nowhere/checkpoints"

    def restore(self, step, args):
        loop = asyncio.new_event_loop()
        loop.close()

        class AbandonedRead:
            def __del__(self):
                loop.call_soon_threadsafe(print)  # RuntimeError: Event loop is closed

        AbandonedRead()  # collected at once: its __del__ raises through sys.unraisablehook
        raise ValueError("OUT_OF_RANGE: Error reading params")


def test_abandoned_reads_of_a_failed_restore_print_nothing(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    with pytest.raises(checkpoints.CheckpointError, match="checkpoint step 2 in /nowhere/checkpoints"):
        checkpoints.restore(_FailingManager(), 2, {"w": np.zeros(3)})
    assert seen == []
    # Unraisable exceptions from anywhere else still reach the previous hook.

    class Other:
        def __del__(self):
            raise KeyError("elsewhere")

    Other()
    assert [type(u.exc_value) for u in seen] == [KeyError]


def predict_action(checkpoint: str, tmp_path) -> subprocess.CompletedProcess:
    image = tmp_path / "frame.png"
    if not image.exists():
        pixels = np.random.default_rng(3).integers(0, 256, (37, 41, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(image)
    return subprocess.run(
        [sys.executable, "-m", "rl2vla_jax.predict_action", f"--checkpoint={checkpoint}", f"--image={image}",
         "--instruction=put the carrot on the plate"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _tiny_rl_config(iterations: int):
    config = film_evi.get_config()
    config.train.iterations, config.train.checkpoint_every = iterations, 1
    config.train.eval_every = config.train.video_every = 0
    config.env.max_episode_steps, config.env.image_size = 4, 64
    config.ppo.minibatch_size, config.ppo.grad_accum_steps = 4, 2
    return config


@pytest.mark.sim
@pytest.mark.slow
def test_rl_run_corrupt_newest_step_warns_resumes_and_cli_errors(tmp_path, capsys):
    from rl2vla_jax.train import loop

    workdir = tmp_path / "run"
    first = loop.train(_tiny_rl_config(2), str(workdir))
    assets = checkpoints.read_assets(checkpoints.resolve(str(workdir)))
    assert assets["env"] == {"image_size": 64, "max_episode_steps": 4, "camera": "wide", "layout": "full"}
    assert json.loads(assets["config"])["train"]["iterations"] == 2
    # predict_action on the run directory: its latest step.
    proc = predict_action(str(workdir), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    cfg = checkpoints.load_model_config(str(workdir))
    assert len(result["tokens"]) == 7
    assert all(cfg.action_token_begin <= t < cfg.action_token_end for t in result["tokens"]), result
    assert len(result["action"]) == 7

    truncate_newest_params(str(workdir / "checkpoints"))
    proc = predict_action(str(workdir / "checkpoints" / "2"), tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"error: checkpoint step 2 in {workdir}/checkpoints cannot be restored"), lines

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-m", "rl2vla_jax.eval", "--config=configs/eval.py", f"--checkpoint={workdir}",
         "--settings=train", f"--out={tmp_path}/eval"],
        capture_output=True, text=True, cwd=root, timeout=600,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"error: checkpoint step 2 in {workdir}/checkpoints cannot be restored"), lines
    assert not os.path.exists(tmp_path / "eval")  # nothing half-written

    capsys.readouterr()
    resumed = loop.train(_tiny_rl_config(3), str(workdir))
    out = capsys.readouterr()
    warnings = [line for line in (out.out + out.err).splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith(
        f"warning: checkpoint step 2 in {workdir}/checkpoints"
    )
    assert warnings[0].endswith("; resuming from step 1"), warnings
    assert [row["iteration"] for row in resumed["rows"]] == [0, 1, 2]
    # Iteration 1 replayed from step 1 is the first run's iteration 1, bit for bit.
    for key in ("return", "policy_loss", "value_loss", "grad_norm", "policy_entropy"):
        assert resumed["rows"][1][key] == first["rows"][1][key], key
    names = os.listdir(workdir / "checkpoints")
    assert sorted(n for n in names if n.isdigit()) == ["1", "2", "3"]
    assert len([n for n in names if n.startswith("2.corrupt-")]) == 1


@pytest.mark.parametrize("damage", ["garbled_metadata", "missing_data_dir"])
def test_unreadable_metadata_or_missing_data_is_corruption_too(tmp_path, damage):
    mgr = checkpoints.manager(str(tmp_path / "checkpoints"))
    assets = checkpoints.make_assets(get_preset("tiny"), NORM_STATS, None)
    for step in (4, 9):
        checkpoints.save(mgr, step, {"policy": _random_params(step)}, assets)
    params_dir = tmp_path / "checkpoints" / "9" / "params"
    if damage == "garbled_metadata":
        (params_dir / "_METADATA").write_text("{not json")
    else:
        shutil.rmtree(params_dir / "d")
        shutil.rmtree(params_dir / "ocdbt.process_0")
    template = checkpoints.abstract(
        {"policy": jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _random_params(0))}
    )
    lines = []
    step, params, _, _ = checkpoints.restore_latest(mgr, template, None, log=lines.append)
    assert step == 4 and len(lines) == 1 and "checkpoint step 9" in lines[0], lines
    np.testing.assert_array_equal(params["policy"]["vision"]["pos"], _random_params(4)["vision"]["pos"])


@pytest.mark.parametrize("change", ["rank", "targets"])
def test_an_adapter_that_does_not_fit_is_one_line_naming_it(tmp_path, change):
    from rl2vla_jax.convert import peft_adapter
    from rl2vla_jax.models.config import LoraConfig
    from rl2vla_jax.models.init import add_lora, init_params

    base_cfg = get_preset("tiny").replace(lora=None)  # the preset has LoRA factors of its own
    base = init_params(base_cfg, jax.random.PRNGKey(3))
    lora = LoraConfig(rank=5, alpha=7.0)
    adapted, cfg = add_lora(base, base_cfg, lora, jax.random.PRNGKey(5))
    adapter = tmp_path / "adapter"
    peft_adapter.export_adapter(adapted, cfg, str(adapter))
    fitted, _ = checkpoints.with_lora(base, cfg, str(adapter), jax.random.PRNGKey(0))  # it fits as written
    assert jax.tree.structure(fitted) == jax.tree.structure(adapted)
    config_file = adapter / "adapter_config.json"
    adapter_config = json.loads(config_file.read_text())
    if change == "rank":
        adapter_config["r"] = 3  # the factors were written with rank 5
        expected = r"adapter .* does not fit the model: shape mismatch for .*lora_A.weight: "
        expected += r"adapter \[5, [\d, ]+\], expected \[3, [\d, ]+\] \(adapter_config.json has r=3\)"
    else:  # a module the model does not have
        from rl2vla_jax.convert.safetensors_io import SafetensorsFile, save_numpy

        path = str(adapter / "adapter_model.safetensors")
        source = SafetensorsFile(path)
        tensors = {k: source.get(k) for k in source.keys()}
        del source
        key = next(iter(tensors))
        tensors[key.replace("lora_A", "lora_C")] = tensors[key]
        save_numpy(tensors, path, metadata={"format": "pt"})
        expected = r"adapter .* does not fit the model: unexpected adapter key .*lora_C.weight \["
    config_file.write_text(json.dumps(adapter_config))
    with pytest.raises(checkpoints.CheckpointError, match=expected):
        checkpoints.with_lora(base, cfg, str(adapter), jax.random.PRNGKey(0))
