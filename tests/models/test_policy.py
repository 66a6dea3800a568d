"""The Flax OpenVLA policy on its own: KV cache, padding, LoRA, compile counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rl2vla_jax.data import prompt
from rl2vla_jax.models import config as config_lib
from rl2vla_jax.models import init as model_init
from rl2vla_jax.models import lora as lora_lib
from rl2vla_jax.policy import sampling

# One compiled program per shape/config, shared by the tests (compiles dominate run time).
score = jax.jit(sampling.action_logits_and_hidden, static_argnums=1)
INSTRUCTIONS = ["put the carrot on the plate", "Stack the red block in the basket quickly", "push the cup"]


def randomise_lora_b(params, seed=1, std=0.3):
    """B = 0 at init makes LoRA a no-op; give it values so LoRA paths are exercised."""
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        if getattr(path[-1], "key", None) != lora_lib.LORA_B:
            return leaf
        return jnp.asarray(rng.normal(0.0, std, leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, params)


@pytest.fixture(scope="module")
def setup():
    cfg = config_lib.tiny()
    params = randomise_lora_b(model_init.init_params(cfg, jax.random.key(0)))
    tokenizer = prompt.load_tokenizer(prompt.tiny_tokenizer())
    ids, mask = prompt.encode_prompts(tokenizer, INSTRUCTIONS, max_len=40, vocab_size=cfg.llm.vocab_size)
    rng = np.random.default_rng(0)
    pixels = rng.normal(size=(len(INSTRUCTIONS), cfg.image_size, cfg.image_size, 6)).astype(np.float32)
    return cfg, params, jnp.asarray(pixels), jnp.asarray(ids), jnp.asarray(mask)


def test_prompts_differ_in_length(setup):
    _, _, _, _, mask = setup
    assert len(set(np.asarray(mask).sum(1).tolist())) == 3


def test_cached_decode_matches_teacher_forced_forward(setup):
    cfg, params, pixels, ids, mask = setup
    out = sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(3), 1.0)
    logits, hidden = score(params, cfg, pixels, ids, mask, out["tokens"])
    # |logits| reach ~15 with the random LM-head LoRA: float32 reduction-order noise ~2e-6 relative.
    np.testing.assert_allclose(out["logits"], logits, atol=5e-5, rtol=1e-5)
    np.testing.assert_allclose(out["hidden"], hidden, atol=2e-5, rtol=1e-5)
    log_p = jax.nn.log_softmax(logits, -1)
    expected = jnp.take_along_axis(log_p, out["tokens"][..., None], -1)[..., 0]
    np.testing.assert_allclose(out["log_probs"], expected, atol=2e-5)
    p = jnp.exp(log_p)
    np.testing.assert_allclose(out["entropies"], -(p * log_p).sum(-1) / np.log(256), atol=2e-6)
    assert out["tokens"].dtype == jnp.int32 and out["tokens"].shape == (3, 7)
    np.testing.assert_array_equal(out["token_ids"], out["tokens"] + cfg.action_token_begin)


def test_teacher_forced_matches_full_vocab_forward(setup):
    """Right-padded scoring == the plain model on each unpadded sequence, sliced to the bins."""
    cfg, params, pixels, ids, mask = setup
    tokens = jax.random.randint(jax.random.key(5), (3, 7), 0, 256)
    logits, _ = score(params, cfg, pixels, ids, mask, tokens)
    model = sampling.OpenVLA(cfg)
    for b in [1]:  # the longest prompt; test_batched_equals_one_by_one covers the others
        n = int(mask[b].sum())
        seq = jnp.concatenate([ids[b, :n], tokens[b] + cfg.action_token_begin])[None]
        full = jax.jit(model.apply)({"params": params}, pixels[b : b + 1], seq)
        start = n - 1 + cfg.num_patches
        expected = full[0, start : start + 7, cfg.action_token_begin : cfg.action_token_end]
        np.testing.assert_allclose(logits[b], expected, atol=2e-5, rtol=1e-5)


def test_batched_equals_one_by_one(setup):
    cfg, params, pixels, ids, mask = setup
    batched = sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(0), 0.0)
    for b in range(3):
        # Row 0 alone and unpadded; rows 1, 2 alone but padded (one compile for both).
        n = int(mask[b].sum()) if b == 0 else ids.shape[1]
        single = sampling.sample_actions(
            params, cfg, pixels[b : b + 1], ids[b : b + 1, :n], mask[b : b + 1, :n], jax.random.key(0), 0.0
        )
        np.testing.assert_array_equal(single["tokens"][0], batched["tokens"][b])
        np.testing.assert_allclose(single["logits"][0], batched["logits"][b], atol=2e-5, rtol=1e-5)


def test_per_row_keys_draw_a_row_the_same_in_any_batch(setup):
    """With one key per row, a subset of rows samples exactly the rows the whole batch samples
    (what a pipelined rollout relies on); typed [B] and raw [B, 2] keys draw alike."""
    cfg, params, pixels, ids, mask = setup
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(13), i))(jnp.arange(3))
    full = sampling.sample_actions(params, cfg, pixels, ids, mask, keys, 5.0)
    raw = sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key_data(keys), 5.0)
    np.testing.assert_array_equal(raw["tokens"], full["tokens"])
    for rows in (np.array([0, 2]), np.array([1])):
        part = sampling.sample_actions(params, cfg, pixels[rows], ids[rows], mask[rows], keys[rows], 5.0)
        np.testing.assert_array_equal(part["tokens"], full["tokens"][rows])
        np.testing.assert_allclose(part["log_probs"], full["log_probs"][rows], atol=2e-5)
    # One shared key draws row b differently in a batch of its own: the property is the keys'.
    shared = sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(13), 5.0)
    rows = np.array([0, 2])
    alone = sampling.sample_actions(params, cfg, pixels[rows], ids[rows], mask[rows], jax.random.key(13), 5.0)
    assert not np.array_equal(alone["tokens"], shared["tokens"][rows])


def test_greedy_is_argmax_and_sampling_varies(setup):
    cfg, params, pixels, ids, mask = setup
    greedy = sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(0), 0.0)
    np.testing.assert_array_equal(greedy["tokens"], jnp.argmax(greedy["logits"], -1))
    hot = [
        sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(s), 5.0)["tokens"]
        for s in (1, 2)
    ]
    assert not np.array_equal(hot[0], hot[1])
    # log-probs are taken at the sampling temperature.
    out = sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(1), 5.0)
    log_p = jax.nn.log_softmax(out["logits"] / 5.0, -1)
    expected = jnp.take_along_axis(log_p, out["tokens"][..., None], -1)[..., 0]
    np.testing.assert_allclose(out["log_probs"], expected, atol=2e-5)


def test_one_compile_per_shape(setup):
    cfg, params, pixels, ids, mask = setup
    sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(0), 1.0)
    before = sampling._sample_actions._cache_size()
    for seed, temperature in [(1, 0.0), (2, 0.6), (3, 1.0)]:
        sampling.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(seed), temperature)
    assert sampling._sample_actions._cache_size() == before


def test_merge_lora_matches_adapted_model(setup):
    cfg, params, pixels, ids, mask = setup
    tokens = jax.random.randint(jax.random.key(7), (3, 7), 0, 256)
    adapted, _ = score(params, cfg, pixels, ids, mask, tokens)
    merged_params = lora_lib.merge_lora(params, cfg.lora)
    base_cfg = cfg.replace(lora=None)
    merged, _ = score(merged_params, base_cfg, pixels, ids, mask, tokens)
    np.testing.assert_allclose(adapted, merged, atol=5e-5, rtol=1e-4)
    base, _ = score(lora_lib.strip_lora(params), base_cfg, pixels, ids, mask, tokens)
    assert np.abs(np.asarray(base - adapted)).max() > 1e-3  # the adapter matters


def test_fresh_lora_is_identity_and_mask_selects_factors():
    cfg = config_lib.tiny()
    params = model_init.init_params(cfg, jax.random.key(1))
    mask = lora_lib.lora_mask(params)
    names = {
        "/".join(getattr(k, "key", str(k)) for k in path)
        for path, m in jax.tree_util.tree_flatten_with_path(mask)[0]
        if m
    }
    assert all(n.endswith(("lora_a", "lora_b")) for n in names)
    # 2 ViT towers x (patch-embedding conv + 4 linears), 3 projector layers, 7 LLM linears, the
    # LM head: what OpenVLA's fine-tuning adapts; two factors each.
    assert len(names) == 2 * (2 * 5 + 3 + 7 + 1)
    assert {"llm/lm_head/lora_a", "vision/dino/patch_embed/lora_b"} <= names
    lora_a = params["llm"]["layers"]["self_attn"]["q_proj"]["lora_a"]
    assert abs(float(jnp.std(lora_a)) - 1 / cfg.lora.rank) < 0.1
    assert float(jnp.abs(params["projector"]["fc1"]["lora_b"]).max()) == 0.0
    total, trainable = lora_lib.count_params(params), lora_lib.count_params(params, mask)
    assert 0 < trainable < total


def test_gradients_reach_lora_factors(setup):
    cfg, params, pixels, ids, mask = setup
    tokens = jax.random.randint(jax.random.key(9), (3, 7), 0, 256)

    def loss(p):
        logits, hidden = score(p, cfg, pixels, ids, mask, tokens)
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None], -1).mean() + hidden.mean()

    grads = jax.jit(jax.grad(loss))(params)
    for path in [
        ("vision", "dino", "blocks", "attn", "qkv"),
        ("projector", "fc2"),
        ("llm", "layers", "mlp", "up_proj"),
    ]:
        node = grads
        for key in path:
            node = node[key]
        assert float(jnp.abs(node["lora_a"]).max()) > 0 and float(jnp.abs(node["lora_b"]).max()) > 0


def test_remat_and_bf16_configs_run(setup):
    _, params, pixels, ids, mask = setup
    cfg = config_lib.tiny(remat_policy="dots", compute_dtype="bfloat16", param_dtype="bfloat16")
    bf16_params = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16), lora_lib.strip_lora(params))
    cfg = cfg.replace(lora=None)
    tokens = jnp.zeros((3, 7), jnp.int32) + 17
    logits, _ = score(bf16_params, cfg, pixels, ids, mask, tokens)
    f32_logits, _ = score(lora_lib.strip_lora(params), config_lib.tiny(lora=None), pixels, ids, mask, tokens)
    assert logits.dtype == jnp.float32
    np.testing.assert_allclose(logits, f32_logits, atol=0.1)


def test_unrolled_layers_match_the_scanned_loop(setup):
    """scan_unroll changes how the layer stacks are compiled (the experiment preset unrolls
    them for speed), not what they compute: same params, same logits and gradients."""
    cfg, params, pixels, ids, mask = setup
    tokens = jnp.asarray(np.random.default_rng(2).integers(0, 256, (3, 7)), jnp.int32)

    def loss(params, cfg):
        logits, hidden = sampling.action_logits_and_hidden(params, cfg, pixels, ids, mask, tokens)
        return jax.nn.log_softmax(logits).mean() + hidden.mean()

    grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    depth = max(cfg.llm.num_layers, cfg.dino.depth, cfg.siglip.depth)
    unrolled = cfg.replace(scan_unroll=depth)
    # The setting takes effect: the scanned stacks lower to loops, the unrolled ones to none.
    assert grad.lower(params, cfg).as_text().count("stablehlo.while") > 0
    assert grad.lower(params, unrolled).as_text().count("stablehlo.while") == 0
    (want, want_grads), (got, got_grads) = grad(params, cfg), grad(params, unrolled)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7), got_grads, want_grads
    )


def test_add_lora_to_a_base_checkpoint_keeps_outputs(setup):
    cfg, params, pixels, ids, mask = setup
    base_cfg, base = cfg.replace(lora=None), lora_lib.strip_lora(params)
    adapted, adapted_cfg = model_init.add_lora(
        base, base_cfg, config_lib.LoraConfig(rank=2, alpha=3.0), jax.random.key(4)
    )
    assert adapted["llm"]["layers"]["mlp"]["up_proj"]["lora_a"].shape == (3, 40, 2)
    assert adapted_cfg.lora.rank == 2
    tokens = jnp.zeros((3, 7), jnp.int32) + 200
    expected, _ = score(base, base_cfg, pixels, ids, mask, tokens)
    got, _ = score(adapted, adapted_cfg, pixels, ids, mask, tokens)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_openvla_7b_parameter_counts():
    """The 7B preset has upstream's sizes (abstract shapes only: nothing is allocated)."""
    shapes = model_init.param_shapes(config_lib.openvla_7b())
    total = lora_lib.count_params(shapes)
    lora = lora_lib.count_params(shapes, lora_lib.lora_mask(shapes))
    # The checkpoint's 7,541,237,184 = these 7,498,156,704 + 43,080,480 the forward never runs
    # (each tower's last block and final norm, SigLIP's MAP head).
    assert total - lora == 7_498_156_704
    # Upstream's LoRA at r 32 (peft 0.11.1 "all-linear", measured with OpenVLA's code on the meta
    # device): 110,828,288 = ours + 1,701,888 on those never-run modules.
    assert lora == 110_828_288 - 1_701_888
