#!/usr/bin/env bash
# A Cloud TPU VM pod slice: the same command on every worker; JAX detects the pod itself.
# The ManiSkill simulator runs on the hosts' CPUs (backend=cpu workers per host).
#   TPU_NAME=my-v5p-32 ZONE=us-east5-a bash launch/tpu_pod.sh [extra --config.* flags]
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
CONFIG="${CONFIG:-configs/film_evi.py:paper}"
REPO="${REPO:-~/rl2vla_jax}"
# Multi-host checkpoints need storage every worker sees (an NFS/Filestore mount, or a bucket).
WORKDIR="${WORKDIR:-/mnt/shared/rl2vla/$(basename "${CONFIG%%:*}" .py)_tpu}"
EXTRA="$*"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command "
  cd $REPO && RL2VLA_ACCELERATOR=tpu ./run.sh train --distributed --config='$CONFIG' \
    --config.env.backend=cpu --config.env.num_envs=16 --config.mesh.data=-1 --config.mesh.fsdp=4 \
    --workdir='$WORKDIR' $EXTRA"
