"""Flax modules: vision towers, projector, Llama, the OpenVLA composition, LoRA, critics."""
