"""HF/PEFT <-> rl2vla_jax checkpoints. Only `torch_reference` imports torch."""
