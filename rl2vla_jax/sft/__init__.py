"""Behaviour cloning of a VLA on demonstrations (OpenVLA's fine-tuning recipe): `python -m rl2vla_jax.sft`.

step  the pure, jitted train and evaluation steps
data  demonstration records -> training examples (grain), the episode split
loop  the host loop: batches, validation, checkpoints
"""
