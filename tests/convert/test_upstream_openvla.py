"""Parity with OpenVLA's own code: a checkpoint made by upstream, converted and run by us.

The upstream side (tests/convert/upstream_openvla.py) runs OpenVLA's Hugging Face modeling,
configuration and processing code in the library versions it pins (transformers 4.40.1,
timm 0.9.10, peft 0.11.1; installed by scripts/install_upstream_openvla.py). It builds a tiny
random OpenVLA with the real token layout (vocab 32064, <PAD> 32000, "▁" 29871, action ids
31744..31999), saves it with `save_pretrained` (sharded safetensors + index), makes a PEFT
adapter the way OpenVLA fine-tunes (target_modules="all-linear"), and predicts actions with
`predict_action` and greedy `generate`. We convert both with our CLI and run our predict_action
CLI on the same PNGs and instructions: the tokens must be identical, log-probs and entropies
within 1e-3 (float32 on both sides; measured differences are ~1e-6).

A second checkpoint uses a tokenizer that is not Llama's (our tiny SentencePiece model as
trained, "▁" at id 341): upstream's predict_action still appends the literal id 29871, and so
must we.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import NORM_STATS, convert_cli, run_cli
from PIL import Image

from rl2vla_jax.checkpoints import load_policy
from rl2vla_jax.convert import peft_adapter
from rl2vla_jax.convert.safetensors_io import SafetensorsFile
from rl2vla_jax.data import prompt
from rl2vla_jax.policy import preprocess

pytestmark = pytest.mark.torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "upstream_openvla.py")
UPSTREAM_ENV = os.environ.get("RL2VLA_UPSTREAM_OPENVLA", os.path.join(sys.prefix, "upstream-openvla"))
INSTRUCTIONS = [
    "put the eggplant in the basket",
    "Move the coke can next to the bowl quickly",
    "push the cup",
]
IMAGE_SHAPES = [(45, 61), (224, 224), (30, 17)]
TOLERANCE = 1e-3


def llama_layout_tokenizer(src: str, dst: str, size: int = 32000, empty_id: int = 29871) -> str:
    """Our tiny SentencePiece model, re-laid out with Llama-2's ids: 32000 pieces with "▁" at
    29871 (upstream's predict_action hard-codes that id), BOS 1, EOS 2, bytes from 3 ("\\n" = 13).
    The padding pieces are UNUSED, so encoding never produces them."""
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2

    model = sp_pb2.ModelProto()
    with open(src, "rb") as f:
        model.ParseFromString(f.read())
    pieces = [(p.piece, p.score, p.type) for p in model.pieces]
    empty = next(p for p in pieces if p[0] == prompt.EMPTY_PIECE)
    pieces.remove(empty)
    fillers = iter(range(size))
    while len(pieces) < size:
        if len(pieces) == empty_id:
            pieces.append(empty)
        else:
            pieces.append((f"<unused{next(fillers)}>", 0.0, sp_pb2.ModelProto.SentencePiece.UNUSED))
    del model.pieces[:]
    for piece, score, kind in pieces:
        model.pieces.add(piece=piece, score=score, type=kind)
    with open(dst, "wb") as f:
        f.write(model.SerializeToString())
    return dst


def run_upstream(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([UPSTREAM_ENV, ROOT])}
    result = subprocess.run(
        [sys.executable, HARNESS, *args], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-4000:]


class Upstream:
    def __init__(self, root, llama_layout: bool = True, with_adapter: bool = True):
        if not os.path.isdir(os.path.join(UPSTREAM_ENV, "openvla_hf")):
            pytest.fail(
                f"the upstream OpenVLA environment is missing at {UPSTREAM_ENV}; "
                "run ./run.sh setup (scripts/install_upstream_openvla.py)"
            )
        self.root = root
        self.tokenizer = str(root / "tokenizer.model")
        if llama_layout:
            llama_layout_tokenizer(prompt.tiny_tokenizer(), self.tokenizer)
        else:
            shutil.copy(prompt.tiny_tokenizer(), self.tokenizer)
        norm_stats = str(root / "norm_stats.json")
        with open(norm_stats, "w") as f:
            json.dump(NORM_STATS, f)
        rng = np.random.default_rng(5)
        self.images = []
        for i, shape in enumerate(IMAGE_SHAPES):
            path = str(root / f"frame{i}.png")
            Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path)
            self.images.append(path)
        self.hf_dir, self.adapter_dir = str(root / "hf"), str(root / "adapter")
        run_upstream(
            "build", f"--out={self.hf_dir}", f"--tokenizer={self.tokenizer}", f"--norm_stats={norm_stats}"
        )
        self.predictions = {False: self.predict(None)}
        self.converted = {False: self.convert("jax_base")}
        if with_adapter:
            run_upstream("adapter", f"--hf_dir={self.hf_dir}", f"--out={self.adapter_dir}")
            self.predictions[True] = self.predict(self.adapter_dir)
            self.converted[True] = self.convert("jax_lora", f"--adapter={self.adapter_dir}")

    def predict(self, adapter_dir: str | None) -> list[dict]:
        """Upstream's predictions for every (image, instruction), with or without an adapter."""
        out = str(self.root / f"upstream_{len(os.listdir(self.root))}.json")
        extra = [f"--adapter={adapter_dir}"] if adapter_dir else []
        run_upstream(
            "predict", f"--hf_dir={self.hf_dir}", "--images", *self.images, "--instructions", *INSTRUCTIONS,
            "--unnorm_key=bridge_orig", f"--out={out}", *extra,
        )  # fmt: skip
        with open(out) as f:
            return json.load(f)

    def convert(self, name: str, *extra: str) -> str:
        return convert_cli(self.hf_dir, str(self.root / name), *extra)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    return Upstream(tmp_path_factory.mktemp("upstream_openvla"))


@pytest.fixture(scope="module")
def upstream_small_tokenizer(tmp_path_factory):
    """Upstream's model and processor with a non-Llama tokenizer (384 pieces, "▁" = 341)."""
    return Upstream(
        tmp_path_factory.mktemp("upstream_small_tokenizer"), llama_layout=False, with_adapter=False
    )


def test_checkpoint_is_upstreams_sharded_layout(upstream):
    with open(os.path.join(upstream.hf_dir, "model.safetensors.index.json")) as f:
        shards = set(json.load(f)["weight_map"].values())
    assert len(shards) > 1
    with open(os.path.join(upstream.hf_dir, "config.json")) as f:
        config = json.load(f)
    assert config["transformers_version"] == "4.40.1" and config["text_config"]["vocab_size"] == 32064


def test_our_inputs_equal_upstream_processor(upstream):
    tokenizer = prompt.load_tokenizer(upstream.tokenizer)
    for path, instruction, ref in zip(upstream.images, INSTRUCTIONS, upstream.predictions[False]):
        assert prompt.encode_prompt(tokenizer, instruction, vocab_size=32064) == ref["input_ids"]
        pixels = preprocess.preprocess_images([Image.open(path)], 28)[0]
        np.testing.assert_allclose(
            pixels.transpose(2, 0, 1), np.asarray(ref["pixel_values"]), atol=1e-6, rtol=0
        )


def test_adapter_changes_upstream_outputs(upstream):
    base, adapted = upstream.predictions[False], upstream.predictions[True]
    gap = max(np.abs(np.subtract(a["logprobs"], b["logprobs"])).max() for a, b in zip(base, adapted))
    assert gap > 0.05  # otherwise the adapter test below would be vacuous


def _assert_predict_action_matches(checkpoint, path, instruction, ref):
    """Our predict_action CLI on one image gives upstream's tokens, log-probs, entropies, action."""
    result = run_cli(
        "rl2vla_jax.predict_action", f"--checkpoint={checkpoint}",
        f"--image={path}", f"--instruction={instruction}", "--unnorm_key=bridge_orig",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ours = json.loads(result.stdout.strip().splitlines()[-1])
    assert ours["tokens"] == ref["tokens"], instruction
    np.testing.assert_allclose(ours["logprobs"], ref["logprobs"], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(ours["entropies"], ref["entropies"], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(ours["action"], ref["action"], atol=1e-9, rtol=0)


@pytest.mark.parametrize("with_adapter", [False, True])
def test_predict_action_reproduces_upstream(upstream, with_adapter):
    for path, instruction, ref in zip(upstream.images, INSTRUCTIONS, upstream.predictions[with_adapter]):
        _assert_predict_action_matches(upstream.converted[with_adapter], path, instruction, ref)


def test_empty_token_is_29871_with_a_non_llama_tokenizer(upstream_small_tokenizer):
    """Upstream appends the literal 29871 after "Out:", not the tokenizer's own "▁" id; we
    encode the same ids and predict the same greedy tokens, log-probs and entropies."""
    up = upstream_small_tokenizer
    tokenizer = prompt.load_tokenizer(up.tokenizer)
    own_empty = tokenizer.piece_to_id(prompt.EMPTY_PIECE)
    assert own_empty != 29871 and tokenizer.get_piece_size() < 29871
    for path, instruction, ref in zip(up.images, INSTRUCTIONS, up.predictions[False]):
        assert ref["input_ids"][-1] == 29871 and ref["input_ids"][-2] != 29871
        assert prompt.encode_prompt(tokenizer, instruction, vocab_size=32064) == ref["input_ids"]
        _assert_predict_action_matches(up.converted[False], path, instruction, ref)


def test_adapter_covers_what_openvla_finetuning_adapts(upstream):
    """peft 0.11.1's "all-linear" on OpenVLA also adapts lm_head and both patch-embedding convs."""
    keys = SafetensorsFile(os.path.join(upstream.adapter_dir, "adapter_model.safetensors")).keys()
    for module in (
        "language_model.lm_head",
        "vision_backbone.featurizer.patch_embed.proj",
        "vision_backbone.fused_featurizer.patch_embed.proj",
    ):
        assert f"base_model.model.{module}.lora_A.weight" in keys
    _, cfg, _ = load_policy(upstream.converted[True])
    assert {"^llm/lm_head$", "^vision/dino/patch_embed$", "^vision/siglip/patch_embed$"} <= set(
        cfg.lora.targets
    )


def test_exported_adapter_is_upstreams_and_runs_upstream(upstream, tmp_path):
    params, cfg, _ = load_policy(upstream.converted[True])
    exported = str(tmp_path / "exported")
    peft_adapter.export_adapter(params, cfg, exported, base_model_name_or_path=upstream.hf_dir)
    ours = SafetensorsFile(os.path.join(exported, "adapter_model.safetensors"))
    theirs = SafetensorsFile(os.path.join(upstream.adapter_dir, "adapter_model.safetensors"))
    for key in ours.keys():  # bit-exact factors, in PEFT's layouts (conv factors included)
        np.testing.assert_array_equal(ours.get(key), theirs.get(key), err_msg=key)
    left_out = {k for k in theirs.keys() if ".lora_" in k} - set(ours.keys())
    # Only modules the forward never runs: each tower's last block (depths 3 and 4), SigLIP's MAP head.
    unused = (
        "vision_backbone.featurizer.blocks.2.",
        "vision_backbone.fused_featurizer.blocks.3.",
        "attn_pool.",
    )
    assert left_out and all(any(u in k for u in unused) for k in left_out), sorted(left_out)[:5]
    # PEFT loads our export onto the upstream model and predicts as with its own adapter.
    for ref, again in zip(upstream.predictions[True], upstream.predict(exported)):
        assert again["tokens"] == ref["tokens"]
        np.testing.assert_allclose(again["logprobs"], ref["logprobs"], atol=1e-5, rtol=0)


def test_lora_at_7b_counts_as_upstream(tmp_path):
    """Upstream's 7B model + OpenVLA's LoRA config (meta device) against ours (abstract shapes)."""
    from rl2vla_jax.models import config as config_lib
    from rl2vla_jax.models import init as model_init
    from rl2vla_jax.models import lora as lora_lib

    out = str(tmp_path / "count.json")
    run_upstream("lora-count-7b", f"--out={out}")
    with open(out) as f:
        upstream = json.load(f)
    shapes = model_init.param_shapes(config_lib.openvla_7b())
    ours = lora_lib.count_params(shapes, lora_lib.lora_mask(shapes))
    # Each tower's last block (DINOv2 24 blocks, SigLIP 27) and SigLIP's MAP head: never run.
    never_run_regex = r"vision_backbone\.(featurizer\.blocks\.23|fused_featurizer\.(blocks\.26|attn_pool))\."
    never_run = [m for m in upstream["lora_modules"] if re.match(never_run_regex, m)]
    assert upstream["base_params"] == 7_541_237_184
    assert len(upstream["lora_modules"]) == 439 and len(never_run) == 4 + 4 + 5
    assert "language_model.lm_head" in upstream["lora_modules"]
    assert ours == upstream["lora_params"] - 1_701_888  # the never-run modules' factors at r=32


def test_adapter_base_layer_weight_replaces_the_base(upstream, tmp_path):
    """PEFT stores lm_head's base weight in the adapter and loads it over the model's; so do we."""
    import shutil

    from rl2vla_jax.convert.safetensors_io import save_numpy

    adapter = str(tmp_path / "adapter")
    shutil.copytree(upstream.adapter_dir, adapter)
    path = os.path.join(adapter, "adapter_model.safetensors")
    source = SafetensorsFile(path)
    tensors = {k: source.get(k) for k in source.keys()}
    del source
    key = "base_model.model.language_model.lm_head.base_layer.weight"
    tensors[key] = tensors[key] * 2.0 + 0.5
    save_numpy(tensors, path, metadata={"format": "pt"})
    params, cfg, _ = load_policy(upstream.converted[False])
    original = np.asarray(params["llm"]["lm_head"]["kernel"])
    adapted, _ = peft_adapter.import_adapter(adapter, params, cfg)
    np.testing.assert_array_equal(adapted["llm"]["lm_head"]["kernel"], tensors[key].T)
    np.testing.assert_array_equal(params["llm"]["lm_head"]["kernel"], original)  # input left alone
    tensors[key] = tensors[key][:-1]
    save_numpy(tensors, path, metadata={"format": "pt"})
    with pytest.raises(peft_adapter.ConversionError, match="shape mismatch for .*lm_head.base_layer"):
        peft_adapter.import_adapter(adapter, params, cfg)
