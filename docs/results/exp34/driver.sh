#!/usr/bin/env bash
# exp34: FiLM-EVI PPO from exp33's SFT policy with rollouts at the evaluation's temperature 0.6
# (RL4VLA rolls out at 1.0), exp30's flags otherwise, for 40 min; each checkpoint copied aside.
cd /tmp/clone33
export RL2VLA_VENV=/work/main/.venv
T=/tmp/exp34/times.txt
run=/tmp/exp34/run; mkdir -p $run /tmp/exp34/keep
ln -sfn /tmp/exp33/a/sft $run/sft
ck=$run/rl/film_evi/0/checkpoints
( while true; do for d in "$ck"/*; do n=$(basename "$d"); [[ "$n" =~ ^[0-9]+$ ]] && [ ! -d /tmp/exp34/keep/$n ] && cp -a "$d" /tmp/exp34/keep/; done; sleep 20; done ) &
copier=$!
echo "rl start $(date -u +%FT%T) load $(cat /proc/loadavg) budget 2400s" >> $T
timeout --signal=INT --kill-after=60 2400 experiments/cpu.sh rl film_evi 0 $run --config.env.num_envs=24 \
  --config.rollout.episodes_per_env=4 --config.ppo.grad_accum_steps=24 --config.optim.actor_lr=1e-3 \
  --config.optim.actor_frozen_iterations=3 --config.train.iterations=300 --config.train.checkpoint_every=2 \
  --config.rollout.temperature=0.6 > /tmp/exp34/rl.log 2>&1
echo "rl rc $? end $(date -u +%FT%T)" >> $T
sleep 30; kill $copier
for d in "$ck"/*; do n=$(basename "$d"); [[ "$n" =~ ^[0-9]+$ ]] && [ ! -d /tmp/exp34/keep/$n ] && cp -a "$d" /tmp/exp34/keep/; done
last=$(ls /tmp/exp34/keep | sort -n | tail -1)
echo "eval checkpoint $last start $(date -u +%FT%T)" >> $T
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp34/keep/$last \
  --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=$run/eval_train_$last \
  --compare=/tmp/exp33/a/eval_train > /tmp/exp34/eval_train.log 2>&1
echo "eval rc $? end $(date -u +%FT%T)" >> $T
