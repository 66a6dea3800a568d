"""Image preprocessing, prompts, the action tokenizer and un-normalisation."""

import json

import numpy as np
import pytest
from PIL import Image

from rl2vla_jax.data import action_tokenizer, norm_stats, prompt
from rl2vla_jax.models import config as config_lib
from rl2vla_jax.policy import preprocess
from rl2vla_jax.validation import ConfigError


def test_action_tokenizer_matches_openvla_ids_at_7b():
    tok = action_tokenizer.ActionTokenizer.from_model_config(config_lib.openvla_7b())
    assert (tok.action_token_begin, tok.action_token_end) == (31744, 32000)
    ids = tok.encode(np.array([-1.0, -2.0, 0.0, 0.999, 1.0, 3.0]))
    # digitize(-1) = 1 -> 31999; digitize(1) = 256 -> 31744.
    np.testing.assert_array_equal(ids, [31999, 31999, 32000 - 128, 31745, 31744, 31744])
    centres = (np.linspace(-1, 1, 256)[:-1] + np.linspace(-1, 1, 256)[1:]) / 2
    np.testing.assert_allclose(tok.decode(np.array([31999, 31744, 31745])), centres[[0, 254, 254]])
    np.testing.assert_array_equal(tok.encode_bins(np.array([-1.0, 1.0])), [255, 0])


def test_action_tokenizer_round_trip_within_one_bin():
    tok = action_tokenizer.ActionTokenizer.from_model_config(config_lib.tiny())
    assert tok.action_token_end == 384
    actions = np.random.default_rng(0).uniform(-1, 1, size=(13, 7))
    decoded = tok.decode_bins(tok.encode_bins(actions))
    assert np.abs(decoded - actions).max() <= 2 / 255 / 2 + 1e-9


def test_unnormalize_masks_and_selects_key(tmp_path):
    stats = {
        "bridge_orig": {
            "action": {
                "q01": [-0.5, -1.0, 0.0, 0, 0, 0, 0.0],
                "q99": [0.5, 3.0, 2.0, 1, 1, 1, 1.0],
                "mask": [True, True, True, True, True, True, False],
            }
        },
        "other": {"action": {"q01": [0.0] * 7, "q99": [1.0] * 7}},
    }
    path = tmp_path / "dataset_statistics.json"
    path.write_text(json.dumps(stats))
    loaded = norm_stats.load_norm_stats(str(path))
    action = norm_stats.select_stats(loaded, "bridge_orig")
    a = np.array([0.2, -1.0, 1.0, 0.0, 0.5, -0.5, 0.73])
    out = norm_stats.unnormalize(a, action)
    np.testing.assert_allclose(out, [0.1, -1.0, 2.0, 0.5, 0.75, 0.25, 0.73])
    np.testing.assert_allclose(norm_stats.normalize(out, action), a, atol=1e-7)
    (tmp_path / "config.json").write_text(json.dumps({"norm_stats": stats, "x": 1}))
    assert norm_stats.load_norm_stats(str(tmp_path / "config.json")) == stats
    with pytest.raises(ValueError, match="unnorm_key"):
        norm_stats.select_stats(loaded, None)
    with pytest.raises(ValueError, match="not one of"):
        norm_stats.select_stats(loaded, "nope")


def test_image_preprocessing_is_pil_bicubic_then_two_normalisations():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    out = preprocess.preprocess_images([raw], 28)[0]
    assert out.shape == (28, 28, 6) and out.dtype == np.float32
    resized = np.asarray(Image.fromarray(raw).resize((28, 28), Image.BICUBIC), np.float32) / 255
    np.testing.assert_allclose(
        out[..., :3], (resized - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], atol=1e-6
    )
    np.testing.assert_allclose(out[..., 3:], resized * 2 - 1, atol=1e-6)
    batch = preprocess.preprocess_images([raw, Image.fromarray(raw).convert("RGBA")], 28)
    np.testing.assert_array_equal(batch[0], batch[1])


def test_prompt_ids_follow_the_openvla_rules():
    tokenizer = prompt.load_tokenizer(prompt.tiny_tokenizer())
    assert tokenizer.get_piece_size() == prompt.TINY_VOCAB_SIZE
    empty = tokenizer.piece_to_id("\u2581")
    texts = ["Put The Carrot on the plate", "push the cup"]
    ids, mask = prompt.encode_prompts(tokenizer, texts, max_len=40, vocab_size=448)
    assert ids.shape == (2, 40) and ids.dtype == np.int32
    for row, m, text in zip(ids, mask, texts, strict=True):
        real = row[m].tolist()
        assert real[0] == tokenizer.bos_id() and real[-1] == empty
        assert tokenizer.decode(real[1:-1]) == prompt.prompt_text(text)
        assert 13 in real  # "\n" is the byte piece <0x0A>, as in Llama-2
        assert (row[~m] == prompt.pad_id(tokenizer)).all() and m[: m.sum()].all()
    with pytest.raises(
        ConfigError, match="more than the 5 the model pads to; raise --config.model.max_prompt_tokens"
    ):
        prompt.encode_prompts(tokenizer, texts, max_len=5, vocab_size=448)


def test_empty_token_is_upstreams_literal_29871_whatever_the_tokenizer():
    """Upstream's predict_action appends id 29871 itself, not the tokenizer's "▁" (341 here)."""
    tokenizer = prompt.load_tokenizer(prompt.tiny_tokenizer())
    own_empty = tokenizer.piece_to_id("\u2581")
    assert own_empty != 29871
    texts = ["Put The Carrot on the plate", "push the cup"]
    ids, mask = prompt.encode_prompts(tokenizer, texts, max_len=40, vocab_size=32064)
    for row, m, text in zip(ids, mask, texts, strict=True):
        real = row[m].tolist()
        assert real == [tokenizer.bos_id(), *tokenizer.encode(prompt.prompt_text(text)), 29871]
    # A prompt that already ends with 29871 keeps it once; with the tokenizer's "▁" it still gets 29871.
    encode = tokenizer.encode
    try:
        tokenizer.encode = lambda text: [*encode(text), 29871]
        out = prompt.encode_prompt(tokenizer, "push the cup", vocab_size=32064)
        assert out[-1] == 29871 and out[-2] != 29871
        tokenizer.encode = lambda text: [*encode(text), own_empty]
        assert prompt.encode_prompt(tokenizer, "push the cup", vocab_size=32064)[-2:] == [own_empty, 29871]
    finally:
        tokenizer.encode = encode
    # A model too small to hold id 29871 (the tiny test models) gets the tokenizer's own "▁".
    assert prompt.encode_prompt(tokenizer, "push the cup", vocab_size=448)[-1] == own_empty
