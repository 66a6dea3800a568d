#!/usr/bin/env bash
# exp30: the sft stage from a clean clone on a fresh machine, then FiLM-EVI PPO with exp29's actor lr 1e-3
# for 88 min (exp28's flags otherwise), each checkpoint copied aside as it is written.
cd /tmp/clone30
export RL2VLA_VENV=/work/main/.venv
T=/tmp/exp30/times.txt
echo "sft start $(date -u +%FT%T) load $(cat /proc/loadavg)" >> $T
experiments/cpu.sh sft /tmp/exp30/run > /tmp/exp30/sft.log 2>&1
echo "sft rc $? end $(date -u +%FT%T)" >> $T
sleep 10
run=/tmp/exp30/run; ck=$run/rl/film_evi/0/checkpoints; mkdir -p /tmp/exp30/keep
( while true; do for d in "$ck"/*; do n=$(basename "$d"); [[ "$n" =~ ^[0-9]+$ ]] && [ ! -d /tmp/exp30/keep/$n ] && cp -a "$d" /tmp/exp30/keep/; done; sleep 20; done ) &
copier=$!
echo "rl start $(date -u +%FT%T) load $(cat /proc/loadavg) budget 5280s" >> $T
timeout --signal=INT --kill-after=60 5280 experiments/cpu.sh rl film_evi 0 $run --config.env.num_envs=24 \
  --config.rollout.episodes_per_env=4 --config.ppo.grad_accum_steps=24 --config.optim.actor_lr=1e-3 \
  --config.optim.actor_frozen_iterations=3 --config.train.iterations=300 --config.train.checkpoint_every=2 \
  > /tmp/exp30/rl.log 2>&1
echo "rl rc $? end $(date -u +%FT%T)" >> $T
sleep 30; kill $copier
for d in "$ck"/*; do n=$(basename "$d"); [[ "$n" =~ ^[0-9]+$ ]] && [ ! -d /tmp/exp30/keep/$n ] && cp -a "$d" /tmp/exp30/keep/; done
echo "done $(date -u +%FT%T)" >> $T
