#!/usr/bin/env bash
# One GPU (sized for an 80 GB H100/A100): OpenVLA-7B FiLM-EVI PPO with RL4VLA's recipe.
#   INIT=/path/to/converted/openvla-7b bash launch/single_gpu.sh [extra --config.* flags]
# INIT is the output of `python -m rl2vla_jax.convert_openvla` (or an SFT checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-configs/film_evi.py:paper}"
WORKDIR="${WORKDIR:-runs/$(basename "${CONFIG%%:*}" .py)_paper}"
# The simulator shares the GPU with JAX: do not let XLA take all its memory up front.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
RL2VLA_ACCELERATOR=cuda12 ./run.sh train --config="$CONFIG" --workdir="$WORKDIR" \
  ${INIT:+--config.init_from="$INIT"} "$@"
