#!/usr/bin/env bash
# exp41: FiLM-EVI PPO with exp30's flags exactly (24 envs x 4 episodes, 960-sample Adam steps, actor
# lr 1e-3, 3 critic-only updates, GAE lambda 0.95, RL4VLA's reward) from exp38's SFT policy (= exp36's),
# training seed 0 as exp39/exp40: a replicate of exp30 on another SFT policy and the control for both;
# 88 min, each checkpoint copied aside; then the last checkpoint on the 200 train-split episodes,
# paired with the SFT policy's evaluation there (exp36's: same policy).
cd /tmp/clone41
export RL2VLA_VENV=/work/main/.venv
T=/tmp/exp41/times.txt
echo "clone $(git rev-parse --short HEAD)" > $T
base=/work/main/docs/results/exp36/eval_train
run=/tmp/exp41/run; mkdir -p $run /tmp/exp41/keep; ln -sfn /tmp/exp38/run/sft $run/sft
ck=$run/rl/film_evi/0/checkpoints
( while true; do for d in "$ck"/*; do n=$(basename "$d"); [[ "$n" =~ ^[0-9]+$ ]] && [ ! -d /tmp/exp41/keep/$n ] && cp -a "$d" /tmp/exp41/keep/; done; sleep 20; done ) &
copier=$!
echo "rl start $(date -u +%FT%T) load $(cat /proc/loadavg) budget 5280s" >> $T
timeout --signal=INT --kill-after=60 5280 experiments/cpu.sh rl film_evi 0 $run --config.env.num_envs=24 \
  --config.rollout.episodes_per_env=4 --config.ppo.grad_accum_steps=24 --config.optim.actor_lr=1e-3 \
  --config.optim.actor_frozen_iterations=3 --config.train.iterations=300 --config.train.checkpoint_every=2 \
  > /tmp/exp41/rl.log 2>&1
echo "rl rc $? end $(date -u +%FT%T) load $(cat /proc/loadavg)" >> $T
sleep 30; kill $copier
for d in "$ck"/*; do n=$(basename "$d"); [[ "$n" =~ ^[0-9]+$ ]] && [ ! -d /tmp/exp41/keep/$n ] && cp -a "$d" /tmp/exp41/keep/; done
last=$(ls /tmp/exp41/keep | sort -n | tail -1)
echo "eval of checkpoint $last start $(date -u +%FT%T) base $base" >> $T
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp41/keep/$last \
  --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=$run/eval_train_$last --compare=$base \
  > /tmp/exp41/eval_train.log 2>&1
echo "eval rc $? end $(date -u +%FT%T)" >> $T
