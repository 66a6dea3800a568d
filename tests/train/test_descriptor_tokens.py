"""critic.descriptor_tokens: with "first" the EVI critic's V(s; u) reads H_1 only, which the
state alone decides, so resampling action tokens 2-7 leaves V unchanged; with "all" it moves."""

import jax
import numpy as np
import pytest

from configs import film_evi
from rl2vla_jax.models.init import init_params
from rl2vla_jax.policy import loading
from rl2vla_jax.policy.act import make_act
from rl2vla_jax.train import builders, hparams
from rl2vla_jax.train import update as update_lib

NUM_ENVS, PROMPT_LEN = 5, 11


def _setup(tokens: str):
    config = film_evi.get_config()
    config.unlock()
    config.critic.descriptor_tokens = tokens
    config.critic.hidden_sizes, config.critic.film_hidden_size = (17, 11), 7
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
    critic = builders.make_critic(hp, config)
    params = init_params(model_cfg, jax.random.PRNGKey(0))
    critic_params = builders.init_critic_params(
        critic, model_cfg.llm.hidden_size, jax.random.PRNGKey(1), True
    )
    # FiLM starts as the identity (u is ignored); a random last layer makes V depend on u.
    kernel = critic_params["film_out"]["kernel"]
    critic_params["film_out"]["kernel"] = 3.0 * jax.random.normal(jax.random.PRNGKey(2), kernel.shape)
    return hp, model_cfg, critic, params, critic_params


def _observation(model_cfg, seed=4):
    rng = np.random.default_rng(seed)
    size = model_cfg.image_size
    images = rng.integers(0, 256, (NUM_ENVS, size, size, 3), dtype=np.uint8)
    prompt_ids = rng.integers(3, model_cfg.action_token_begin, (NUM_ENVS, PROMPT_LEN)).astype(np.int32)
    prompt_mask = np.arange(PROMPT_LEN)[None] < rng.integers(4, PROMPT_LEN, (NUM_ENVS, 1))
    return images, prompt_ids, prompt_mask


@pytest.mark.parametrize("tokens", ["first", "all"])
def test_resampling_tokens_2_to_7_moves_v_only_with_all(tokens):
    hp, model_cfg, critic, params, critic_params = _setup(tokens)
    images, prompt_ids, prompt_mask = _observation(model_cfg)
    rng = np.random.default_rng(7)
    first = rng.integers(0, 256, (NUM_ENVS, 1))
    values = []
    for _ in range(2):  # the same token 1, tokens 2-7 drawn afresh
        action = np.concatenate([first, rng.integers(0, 256, (NUM_ENVS, 6))], axis=1).astype(np.int32)
        batch = {"images": images, "prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "tokens": action}
        _, entropies, descriptor, value = update_lib.evaluate_actions(
            hp, model_cfg, critic, params, critic_params, batch
        )
        values.append((np.asarray(entropies), np.asarray(descriptor), np.asarray(value)))
    (h_a, u_a, v_a), (h_b, u_b, v_b) = values
    np.testing.assert_allclose(h_a[:, 0], h_b[:, 0], rtol=1e-6)  # H_1: the state's alone
    assert np.abs(h_a[:, 1:] - h_b[:, 1:]).max() > 1e-4  # H_2..H_7: they follow the action
    if tokens == "first":
        np.testing.assert_allclose(u_a, h_a[:, 0], rtol=1e-6)
        np.testing.assert_array_equal(v_a, v_b)
    else:
        np.testing.assert_allclose(u_a, h_a.mean(-1), rtol=1e-6)
        assert np.abs(v_a - v_b).max() > 1e-4


@pytest.mark.parametrize("tokens", ["first", "all"])
def test_the_act_step_values_a_state_independently_of_its_sample_only_with_first(tokens):
    hp, model_cfg, critic, params, critic_params = _setup(tokens)
    act = make_act(model_cfg, critic, hp.descriptor_mode, hp.descriptor_tokens)
    observation = _observation(model_cfg, seed=5)
    a, b = (act(params, critic_params, *observation, jax.random.PRNGKey(k), 1.0) for k in (11, 13))
    assert (np.asarray(a["tokens"]) != np.asarray(b["tokens"])).any()
    if tokens == "first":
        np.testing.assert_array_equal(a["value"], b["value"])
    else:
        assert np.abs(np.asarray(a["value"]) - np.asarray(b["value"])).max() > 1e-4
