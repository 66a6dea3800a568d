"""The learning test: PPO (each critic variant) and GRPO must raise the tiny VLA's return on the
pure-JAX reach task within a fixed budget, with fixed seeds. Flipping the advantage's sign
makes it fail (the return falls instead)."""

import numpy as np
import pytest

from rl2vla_jax.train import reach

ITERATIONS = 24
MARGIN = 0.15  # mean return of the last 6 iterations minus that of the first 4


@pytest.mark.slow
@pytest.mark.parametrize(
    "critic, algorithm, entropy_coef",
    [
        ("film_evi", "ppo", 0.0),
        ("value_head", "ppo", 0.0),
        ("entropy_concat", "ppo", 0.0),
        ("value_head", "ppo", 0.5),  # entropy-weighted value loss
        ("value_head", "grpo", 0.0),
    ],
)
def test_rl_raises_return_on_reach(critic, algorithm, entropy_coef):
    returns = reach.train_returns(critic, algorithm, entropy_coef, iterations=ITERATIONS, seed=0)
    before, after = np.mean(returns[:4]), np.mean(returns[-6:])
    print(f"{critic}/{algorithm}: return {before:.3f} -> {after:.3f}")
    assert after - before > MARGIN, (before, after, returns)
