#!/usr/bin/env bash
# Demonstration throughput against the number of simulator workers (120 episodes of the preset).
cd /tmp/clone33
export RL2VLA_VENV=/work/main/.venv
for w in 2 3 4; do
  rm -rf /tmp/wk$w; s=$(date +%s)
  ./run.sh python -m rl2vla_jax.collect_demos --config=configs/sft.py:experiment --out=/tmp/wk$w \
    --num_episodes=120 --num_workers=$w > /tmp/wk$w.log 2>&1
  echo "workers $w rc $? seconds $(( $(date +%s) - s )) load $(cat /proc/loadavg)" >> /tmp/workers.txt
done
