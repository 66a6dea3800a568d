"""Every entry point turns bad input into exactly one `error:` line on stderr and exit code 2,
before anything is compiled or written (table-driven: entry point, arguments, the line)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# fmt: off
CASES = [
    # (module, arguments, start of the error line after "error: "; {tmp} is a fresh folder).
    # Importing the simulator takes ~10 s, so the cases that need it (eval's checkpoint and
    # seeds, a setting name, anything under rl2vla_jax.envs) are one or two per entry point;
    # tests/evaluation/test_eval_cli.py has eval's suite and setting errors.
    ("train", ["--config=configs/bogus.py"], "config file configs/bogus.py does not exist; existing configs:"),
    ("train", ["--config=configs/film_evi.py:papr"], "unknown config argument 'papr'; valid: cpu, paper, experiment, seed"),
    ("train", ["--config=configs/film_evi.py:paper,seed=x"], "config argument seed='x' must be int"),
    ("train", ["--config=configs/grpo.py:same"], "unknown config argument 'same'; valid: same_state, cpu,"),
    ("train", ["--config=configs/film_evi.py", "--config.algorithm=a2c"], "config.algorithm='a2c' is not valid"),
    ("train", ["--config=configs/film_evi.py", "--config.ppo.clip_ep=1"], "'clip_ep' Did you mean \"clip_eps\""),
    ("train", ["--config=configs/sft.py"], "the config has no `ppo` section"),
    ("train", ["--config=configs/film_evi.py", "workdir"], "unexpected arguments ['workdir']"),
    ("train", ["--config=configs/film_evi.py", "--workdri=x"], "Unknown command line flag 'workdri'"),
    ("train", [], "flag --config=None: Flag --config must have a value other than None"),
    ("train", ["--config=configs/default.py", "--config.unnorm_key=bridge_orig", "--workdir={tmp}/w"], "unnorm_key 'bridge_orig' is not one of ['full_range']"),
    ("train", ["--config=configs/default.py", "--config.train.iterations=x", "--workdir={tmp}/w"], "flag --config.train.iterations=x"),
    ("train", ["--config=configs/default.py", "--config.init_from={tmp}/none", "--workdir={tmp}/w"], "checkpoint {tmp}/none does not exist"),
    ("train", ["--config=configs/default.py", "--config.adapter={tmp}", "--workdir={tmp}/w"], "config.adapter='{tmp}' needs config.init_from"),
    ("sft", ["--config=configs/sft.py", "--config.init_from={tmp}", "--config.adapter={tmp}", "--workdir={tmp}/w"], "config.adapter='{tmp}' is not a PEFT adapter folder"),
    ("sft", ["--config=configs/sft.py", "--config.data_dir={tmp}/none", "--workdir={tmp}/w"], "no demonstrations in"),
    ("sft", ["--config=configs/film_evi.py"], "the config has no `sft` section; use configs/sft.py"),
    ("sft", ["--config=configs/sft.py", "--config.model.preset=huge"], "config.model.preset='huge' is not valid"),
    ("sft", ["--config=configs/sft.py", "--config.sft.lr_schedule=linear", "--workdir={tmp}/w"], "config.sft.lr_schedule='linear' must be 'constant' or 'cosine'"),
    ("eval", ["--config=configs/eval.py", "--checkpoint={tmp}/none", "--out={tmp}/out"], "checkpoint {tmp}/none does not exist"),
    ("eval", ["--config=configs/eval.py", "--checkpoint=random", "--seeds=0,one", "--out={tmp}/out"], "--seeds='0,one' must be comma-separated integers"),
    ("eval", ["--config=configs/eval.py", "--checkpoint=random", "--episodes=0"], "flag --episodes=0: 0 is not a positive integer"),
    ("eval", ["--config=configs/film_evi.py", "--checkpoint=random", "--out={tmp}/out"], "the config has no `eval` section"),
    ("predict_action", ["--checkpoint={tmp}", "--image={tmp}/none.png", "--instruction=go"], "--image={tmp}/none.png does not exist"),
    ("predict_action", ["--checkpoint={tmp}", "--image={text_file}", "--instruction=go"], "--image={text_file} is not a readable image"),
    ("predict_action", ["--checkpoint={tmp}", "--image={png16}", "--instruction=go"], "--image={png16} has PIL mode 'I;16' (more than 8 bits"),
    ("predict_action", ["--checkpoint={tmp}", "--image={png}", "--instruction="], "--instruction is empty; pass the task"),
    ("predict_action", ["--checkpoint={tmp}", "--image={png}", "--instruction=  "], "--instruction is empty; pass the task"),
    ("predict_action", ["--checkpoint={tmp}/none", "--image={png}", "--instruction=go"], "checkpoint {tmp}/none does not exist"),
    # A folder without a checkpoint, and a corrupt one (the checkpoint module words these).
    ("predict_action", ["--checkpoint={empty_dir}", "--image={png}", "--instruction=go"], ""),
    ("predict_action", ["--checkpoint={tmp}/corrupt", "--image={png}", "--instruction=go"], ""),
    ("predict_action", ["--checkpoint={tmp}", "--image=x.png"], "flag --instruction=None: Flag --instruction must have a value"),
    ("predict_action", ["--checkpoint={tmp}", "--image=x.png", "--instruction=go", "--temperature=-1"], "flag --temperature=-1"),
    ("convert_openvla", ["--hf_dir={tmp}/none", "--out={tmp}/out"], "--hf_dir {tmp}/none is not a folder"),
    ("convert_openvla", ["--hf_dir={tmp}", "--out={empty_dir}"], "--out {empty_dir} already exists"),
    ("convert_openvla", ["--hf_dir={tmp}"], "--out is required"),
    ("convert_openvla", ["--hf_dir={tmp}", "--out={tmp}/out"], "conversion failed: ConversionError: no config.json in {tmp}"),
    ("convert_openvla", ["--hf_dir={tmp}", "--out={tmp}/out", "--dtype=float16"], "flag --dtype=float16: value should be one of"),
    ("collect_demos", ["--num_episodes=0", "--out={tmp}/out"], "num_episodes=0 must be >= 1"),
    ("collect_demos", ["--config=configs/sft.py", "--setting=moon", "--out={tmp}/out"], "setting='moon' is not valid; choose one of: train,"),
    ("collect_demos", ["--config=configs/nope.py"], "config file configs/nope.py does not exist"),
    ("envs.gallery", ["--image_size=0", "--out={tmp}/out"], "flag --image_size=0: 0 is not integer >= 16"),
    ("envs.expert", ["--setting=moon"], "--setting='moon' is not valid; choose one of: train,"),
    ("measure_overhead", ["--config=configs/bogus.py"], "config file configs/bogus.py does not exist; existing configs:"),
    ("measure_overhead", ["--config=configs/film_evi.py", "--out={tmp}/nodir/x.json"], "--out={tmp}/nodir/x.json: its folder does not exist"),
    ("diagnostics", ["--run={tmp}/none", "--out={tmp}/out"], "--run={tmp}/none is not a directory"),
    ("diagnostics", ["--out={tmp}/out"], "flag --run=None: Flag --run must have a value other than None"),
    ("merge_lora", ["--checkpoint={tmp}/none", "--out={tmp}/out"], "checkpoint {tmp}/none does not exist"),
    ("merge_lora", ["--checkpoint={tmp}", "--out={empty_dir}"], "--out {empty_dir} already exists"),
    ("merge_lora", ["--checkpoint={tmp}"], "flag --out=None: Flag --out must have a value"),
    ("results", ["--out={tmp}/out"], "nothing to do: pass --evals=LABEL=DIR,... and/or --runs=LABEL=DIR,..."),
    ("results", ["--evals=nolabel", "--out={tmp}/out"], "--evals='nolabel' must be LABEL=DIR[,DIR...]"),
    ("collect_demos", ["--config=configs/sft.py", "--config.env.camera=fisheye", "--out={tmp}/out"], "env.camera='fisheye' is not valid; choose one of: wide, close"),
]
# fmt: on


def _fill(text: str, tmp_path) -> str:
    return (
        text.replace("{tmp}", str(tmp_path))
        .replace("{text_file}", str(tmp_path / "note.txt"))
        .replace("{empty_dir}", str(tmp_path / "exists"))
        .replace("{png}", str(tmp_path / "frame.png"))
        .replace("{png16}", str(tmp_path / "depth.png"))
    )


@pytest.mark.parametrize(
    "module, args, message", CASES, ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(CASES)]
)
def test_bad_input_is_one_error_line_and_exit_2(module, args, message, tmp_path):
    (tmp_path / "note.txt").write_text("not an image\n")
    (tmp_path / "exists").mkdir()
    (tmp_path / "corrupt" / "assets").mkdir(parents=True)
    (tmp_path / "corrupt" / "assets" / "model_config.json").write_text('{"llm": {"hidden_size": 4')
    pixels = np.random.default_rng(0).integers(0, 256, (17, 11, 3), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "frame.png")
    depth = np.random.default_rng(1).integers(0, 65536, (17, 11), np.uint16)
    Image.fromarray(depth).save(tmp_path / "depth.png")  # a 16-bit depth map, mode I;16
    before = sorted(os.listdir(tmp_path))
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", f"rl2vla_jax.{module}", *(_fill(a, tmp_path) for a in args)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert (proc.returncode, len(lines)) == (2, 1), proc.stderr[-3000:]
    assert lines[0].startswith("error: " + _fill(message, tmp_path)), lines[0]
    assert sorted(os.listdir(tmp_path)) == before  # nothing written
    assert proc.stdout == ""


def test_every_entry_point_is_in_the_table():
    """A new `python -m` entry point must join the table (and go through cli.run)."""
    mains = set()
    for folder, _, files in os.walk(os.path.join(ROOT, "rl2vla_jax")):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and 'if __name__ == "__main__":' in open(path).read():
                module = os.path.relpath(path, os.path.join(ROOT, "rl2vla_jax"))[:-3].replace(os.sep, ".")
                mains.add(module.removesuffix(".__main__"))
                assert "cli.run(" in open(path).read(), path
    assert mains == {module for module, _, _ in CASES}
