#!/usr/bin/env bash
# A Cloud TPU VM pod slice: the same command on every worker; JAX detects the pod itself.
# The ManiSkill simulator runs on the hosts' CPUs (backend=cpu workers per host). Each host's
# 16 envs are split over its chips (mesh data x fsdp), the weights over 4 chips (fsdp=4: one
# host's chips, as the mesh lists each host's devices together), all-gathered once per
# iteration for acting. GSPMD partitioner: Shardy's hangs with data > 1 and fsdp > 1 on CPU.
# Tested on CPU only (README's scale-out notes), never on a pod.
#   TPU_NAME=my-v5p-32 ZONE=us-east5-a bash launch/tpu_pod.sh [extra --config.* flags]
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
CONFIG="${CONFIG:-configs/film_evi.py:paper}"
REPO="${REPO:-~/rl2vla_jax}"
# Multi-host checkpoints need storage every worker sees (an NFS/Filestore mount, or a bucket).
WORKDIR="${WORKDIR:-/mnt/shared/rl2vla/$(basename "${CONFIG%%:*}" .py)_tpu}"
EXTRA="$*"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command "
  cd $REPO && JAX_USE_SHARDY_PARTITIONER=false RL2VLA_ACCELERATOR=tpu ./run.sh train --distributed --config='$CONFIG' \
    --config.env.backend=cpu --config.env.num_envs=16 --config.mesh.data=-1 --config.mesh.fsdp=4 \
    --workdir='$WORKDIR' $EXTRA"
