"""Parity of the converted Flax OpenVLA with the PyTorch reference (float32, offline).

Tolerances (float32, CPU): tower features / projector outputs / logits agree to ATOL = 2e-5
absolute (measured: <= 4.2e-6 on logits of magnitude ~4; reduction order only).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from rl2vla_jax.checkpoints import load_policy
from rl2vla_jax.data import prompt
from rl2vla_jax.data.action_tokenizer import ActionTokenizer
from rl2vla_jax.data.norm_stats import unnormalize
from rl2vla_jax.models.openvla import OpenVLA
from rl2vla_jax.policy import preprocess, sampling

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

ATOL = 2e-5
INSTRUCTIONS = [
    "put the eggplant in the basket",
    "Move the coke can next to the bowl quickly",
    "push the cup",
]


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, size=(len(INSTRUCTIONS), 45, 61, 3), dtype=np.uint8)
    pixels = preprocess.preprocess_images(list(raw), 28)
    tokenizer = prompt.load_tokenizer(prompt.tiny_tokenizer())
    ids, mask = prompt.encode_prompts(tokenizer, INSTRUCTIONS, vocab_size=448)  # the tiny reference's
    return raw, pixels, ids, mask


def torch_pixels(pixels):
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)))


def test_towers_projector_and_logits_match(tiny_reference, converted, inputs):
    _, pixels, ids, mask = inputs
    params, cfg, _ = load_policy(converted)
    model = OpenVLA(cfg)
    with torch.no_grad():
        ref_dino, ref_siglip = tiny_reference.model.vision_backbone.tower_features(torch_pixels(pixels))
        ref_proj = tiny_reference.model.projector(torch.cat([ref_dino, ref_siglip], -1))
    dino, siglip = model.apply({"params": params}, pixels, method=OpenVLA.tower_features)
    np.testing.assert_allclose(dino, ref_dino.numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(siglip, ref_siglip.numpy(), atol=ATOL, rtol=0)
    proj = model.apply({"params": params}, pixels, method=OpenVLA.project_image)
    np.testing.assert_allclose(proj, ref_proj.numpy(), atol=ATOL, rtol=0)
    for b in range(len(INSTRUCTIONS)):  # each prompt unpadded, as the reference runs it
        n = int(mask[b].sum())
        with torch.no_grad():
            ref_logits = tiny_reference.model(
                torch_pixels(pixels[b : b + 1]), torch.from_numpy(ids[b : b + 1, :n])
            )
        logits = jax.jit(model.apply)({"params": params}, pixels[b : b + 1], ids[b : b + 1, :n])
        assert float(jnp.abs(logits).max()) > 1.0  # a meaningful scale
        np.testing.assert_allclose(logits, ref_logits.numpy(), atol=ATOL, rtol=0)


def greedy_reference(model, cfg, pixels, ids, mask):
    tokens, logits = [], []
    for b in range(len(ids)):
        n = int(mask[b].sum())
        t, lg = model.greedy_action(
            torch_pixels(pixels[b : b + 1]), torch.from_numpy(ids[b : b + 1, :n]).long(),
            cfg.action_token_begin, cfg.action_token_end,
        )  # fmt: skip
        tokens.append(t[0].numpy())
        logits.append(lg[0].numpy())
    return np.stack(tokens), np.stack(logits)


def test_greedy_tokens_identical_batched(tiny_reference, converted, inputs):
    _, pixels, ids, mask = inputs
    params, cfg, _ = load_policy(converted)
    ref_tokens, ref_logits = greedy_reference(tiny_reference.model, cfg, pixels, ids, mask)
    out = sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(0), 0.0)
    np.testing.assert_array_equal(out["token_ids"], ref_tokens)
    np.testing.assert_allclose(out["logits"], ref_logits, atol=ATOL, rtol=0)


def test_lora_adapter_logits_match_peft(tiny_reference, converted_lora, inputs):
    _, pixels, ids, mask = inputs
    params, cfg, _ = load_policy(converted_lora)
    assert cfg.lora.rank == 4 and cfg.lora.alpha == 7
    b = 1
    n = int(mask[b].sum())
    with torch.no_grad():
        ref_logits = tiny_reference.peft_model(
            torch_pixels(pixels[b : b + 1]), torch.from_numpy(ids[b : b + 1, :n])
        )
        base_logits = tiny_reference.model(
            torch_pixels(pixels[b : b + 1]), torch.from_numpy(ids[b : b + 1, :n])
        )
    assert float((ref_logits - base_logits).abs().max()) > 0.1  # the adapter changes the outputs
    logits = jax.jit(OpenVLA(cfg).apply)({"params": params}, pixels[b : b + 1], ids[b : b + 1, :n])
    np.testing.assert_allclose(logits, ref_logits.numpy(), atol=ATOL, rtol=0)
    ref_tokens, _ = greedy_reference(tiny_reference.peft_model, cfg, pixels, ids, mask)
    out = sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(0), 0.0)
    np.testing.assert_array_equal(out["token_ids"], ref_tokens)


@pytest.mark.parametrize("with_adapter", [False, True])
def test_predict_action_cli_matches_reference(
    tiny_reference, converted, converted_lora, inputs, tmp_path, with_adapter
):
    raw, pixels, ids, mask = inputs
    ckpt, torch_model = (
        (converted_lora, tiny_reference.peft_model) if with_adapter else (converted, tiny_reference.model)
    )
    path = str(tmp_path / "frame.png")
    Image.fromarray(raw[0]).save(path)
    result = run_cli(
        "rl2vla_jax.predict_action", f"--checkpoint={ckpt}", f"--image={path}",
        f"--instruction={INSTRUCTIONS[0]}", "--unnorm_key=bridge_orig",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    _, cfg, _ = load_policy(converted)
    ref_tokens, ref_logits = greedy_reference(torch_model, cfg, pixels[:1], ids[:1], mask[:1])
    assert out["tokens"] == ref_tokens[0].tolist()
    log_p = torch.log_softmax(torch.from_numpy(ref_logits[0]), -1).numpy()
    bins = ref_tokens[0] - cfg.action_token_begin
    np.testing.assert_allclose(out["logprobs"], log_p[np.arange(7), bins], atol=1e-3)
    entropy = -(np.exp(log_p) * log_p).sum(-1) / np.log(256)
    np.testing.assert_allclose(out["entropies"], entropy, atol=1e-3)
    normalised = ActionTokenizer.from_model_config(cfg).decode(ref_tokens[0])
    expected = unnormalize(normalised, tiny_reference.hf_config["norm_stats"]["bridge_orig"]["action"])
    np.testing.assert_allclose(out["action"], expected, atol=1e-12)
    assert out["action"][6] == normalised[6]  # the gripper is unmasked: left as decoded
