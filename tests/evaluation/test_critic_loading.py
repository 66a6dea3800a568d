"""Evaluation values states with the checkpoint's critic when the run had one: the critic is
rebuilt from the run config stored in the checkpoint's assets."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from configs import film_evi, grpo
from rl2vla_jax.models import critics
from rl2vla_jax.policy import loading


def _run_assets(config) -> dict:
    return {"config": config.to_json()}


def test_critic_rebuilt_from_the_run_config_gives_the_trained_values():
    config = film_evi.get_config()
    config.unlock()
    config.critic.hidden_sizes, config.critic.film_hidden_size = (17, 11), 7
    module = critics.make_critic("film_evi", (17, 11), 7)
    hidden, u = (
        jax.random.normal(jax.random.PRNGKey(0), (5, 29)),
        jax.random.uniform(jax.random.PRNGKey(1), (5,)),
    )
    params = module.init(jax.random.PRNGKey(2), hidden, u)["params"]
    params["film_out"]["kernel"] = jax.random.normal(
        jax.random.PRNGKey(3), params["film_out"]["kernel"].shape
    )
    loaded = loading.critic_from({"policy": {}, "critic": params}, _run_assets(config))
    assert isinstance(loaded.module, critics.FiLMEVICritic)
    assert (loaded.descriptor_tokens, loaded.descriptor_mode) == ("first", "mean")
    assert (loaded.gamma, loaded.gae_lambda) == (0.99, 0.95)
    np.testing.assert_array_equal(
        loaded.module.apply({"params": loaded.params}, hidden, u), module.apply({"params": params}, hidden, u)
    )


def test_no_critic_and_old_checkpoints():
    assert loading.critic_from({"policy": {}}, _run_assets(film_evi.get_config())) is None  # SFT / converted
    assert loading.critic_from({"policy": {}}, {"config": grpo.get_config().to_json()}) is None  # GRPO: none
    assert loading.critic_from({"policy": {}, "critic": {"x": jnp.ones(3)}}, {}) is None  # no run config
    # a checkpoint written before critic.descriptor_tokens existed averaged all 7 tokens
    old = json.loads(film_evi.get_config().to_json())
    del old["critic"]["descriptor_tokens"]
    loaded = loading.critic_from({"policy": {}, "critic": {"x": jnp.ones(3)}}, {"config": json.dumps(old)})
    assert loaded.descriptor_tokens == "all"
