"""Random init options of the small from-scratch models (models/init.py)."""

import jax
import numpy as np
import optax

from rl2vla_jax.models import config as model_config_lib
from rl2vla_jax.models.init import init_params
from rl2vla_jax.models.trainable import flatten
from rl2vla_jax.sft import step as sft_step


def _leaves(params, predicate):
    return [np.asarray(v) for k, v in flatten(params).items() if predicate(k.split("/"))]


def test_position_and_layer_scale_options_set_only_their_params():
    cfg = model_config_lib.get_preset("tiny")
    default = init_params(cfg, jax.random.PRNGKey(7))
    scaled = init_params(cfg, jax.random.PRNGKey(7), position_std=1.0, layer_scale=0.1)
    positions = _leaves(scaled, lambda path: path[-1] == "pos_embed")
    assert len(positions) == 2  # DINOv2 and SigLIP
    for default_pos, pos in zip(_leaves(default, lambda path: path[-1] == "pos_embed"), positions):
        assert 0.8 < pos.std() < 1.2 and 0.015 < default_pos.std() < 0.025
    scales = _leaves(scaled, lambda path: len(path) > 1 and path[-2].startswith("ls"))
    assert scales and all(np.all(s == np.float32(0.1)) for s in scales)
    assert all(
        np.all(s == np.float32(1e-5))
        for s in _leaves(default, lambda p: len(p) > 1 and p[-2].startswith("ls"))
    )
    # Everything else is drawn identically.
    same = [k for k in flatten(default) if "pos_embed" not in k and "/ls" not in k]
    for key in same:
        np.testing.assert_array_equal(flatten(default)[key], flatten(scaled)[key])


def test_sft_warmup_ramps_the_first_updates():
    params = {"w": np.full((13,), 0.5, np.float32)}
    grads = {"w": np.linspace(-1.0, 1.0, 13, dtype=np.float32)}
    plain = sft_step.make_optimizer(1e-3, 0.0, 10.0)
    ramped = sft_step.make_optimizer(1e-3, 0.0, 10.0, warmup_steps=4)
    plain_state, ramped_state = plain.init(params), ramped.init(params)
    for step in range(6):
        plain_update, plain_state = plain.update(grads, plain_state, params)
        ramped_update, ramped_state = ramped.update(grads, ramped_state, params)
        factor = min(1.0, (step + 1) / 4)
        np.testing.assert_allclose(ramped_update["w"], factor * plain_update["w"], rtol=1e-5, atol=1e-9)
    assert optax.tree.norm(plain_update) > 0


def test_sft_cosine_decay_follows_the_warmup_down_to_zero_at_the_last_step():
    params = {"w": np.full((13,), 0.5, np.float32)}
    grads = {"w": np.linspace(-1.0, 1.0, 13, dtype=np.float32)}
    plain = sft_step.make_optimizer(1e-3, 0.0, 10.0)
    decayed = sft_step.make_optimizer(1e-3, 0.0, 10.0, warmup_steps=2, decay_steps=6)
    plain_state, decayed_state = plain.init(params), decayed.init(params)
    # Warm-up 1/2, 1; then the half cosine over updates 2..6: 1, 0.854, 0.5, 0.146, 0, and 0 after.
    expected = [0.5, 1.0, 1.0, 0.5 * (1 + np.cos(np.pi / 4)), 0.5, 0.5 * (1 - np.cos(np.pi / 4)), 0.0, 0.0]
    for factor in expected:
        plain_update, plain_state = plain.update(grads, plain_state, params)
        decayed_update, decayed_state = decayed.update(grads, decayed_state, params)
        np.testing.assert_allclose(decayed_update["w"], factor * plain_update["w"], rtol=1e-5, atol=1e-9)
    assert optax.tree.norm(plain_update) > 0
