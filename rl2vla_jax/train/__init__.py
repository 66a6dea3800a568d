"""Training: state, jitted steps, the host loop, checkpoints, sharding, logging.

`python -m rl2vla_jax.train` runs `__main__.py` (a package cannot sit beside a `train.py`
module of the same name, so the thin entry point lives here).
"""
