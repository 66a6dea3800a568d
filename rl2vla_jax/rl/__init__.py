"""Pure array functions for RL on tokenized-action policies (no Flax modules, no environments)."""
