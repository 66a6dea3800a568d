#!/usr/bin/env bash
# exp39: FiLM-EVI PPO with the reach shaping (config.env.reach_shaping=1.0) from exp38's SFT policy,
# exp30's flags otherwise (24 envs x 4 episodes, 960-sample Adam steps, actor lr 1e-3, 3 critic-only
# updates), 88 min, each checkpoint copied aside; then the last checkpoint on the 200 train-split
# episodes, paired with the SFT policy's evaluation there.
cd /tmp/clone39
export RL2VLA_VENV=/work/main/.venv
T=/tmp/exp39/times.txt
echo "clone $(git rev-parse --short HEAD)" > $T
# exp38 first: its SFT, then its fingerprint check; if its policy is exp36's bit for bit, exp36's
# evaluation is its own (the evaluation is deterministic) and exp38's is stopped.
until grep -q "^fingerprint rc" /tmp/exp38/times.txt 2>/dev/null; do sleep 15; done
if grep -q "^same_run rc 0" /tmp/exp38/times.txt; then
  pkill -INT -f "exp38/run/eval_train" ; base=/work/main/docs/results/exp36/eval_train
  echo "exp38 = exp36 bit for bit: its evaluation stopped, pairing with exp36's" >> $T
else
  until grep -q "^eval rc" /tmp/exp38/times.txt; do sleep 15; done
  base=/tmp/exp38/run/eval_train
fi
sleep 10
run=/tmp/exp39/run; mkdir -p $run /tmp/exp39/keep; ln -sfn /tmp/exp38/run/sft $run/sft
ck=$run/rl/film_evi/0/checkpoints
( while true; do for d in "$ck"/*; do n=$(basename "$d"); [[ "$n" =~ ^[0-9]+$ ]] && [ ! -d /tmp/exp39/keep/$n ] && cp -a "$d" /tmp/exp39/keep/; done; sleep 20; done ) &
copier=$!
echo "rl start $(date -u +%FT%T) load $(cat /proc/loadavg) budget 5280s" >> $T
timeout --signal=INT --kill-after=60 5280 experiments/cpu.sh rl film_evi 0 $run --config.env.num_envs=24 \
  --config.rollout.episodes_per_env=4 --config.ppo.grad_accum_steps=24 --config.optim.actor_lr=1e-3 \
  --config.optim.actor_frozen_iterations=3 --config.train.iterations=300 --config.train.checkpoint_every=2 \
  --config.env.reach_shaping=1.0 > /tmp/exp39/rl.log 2>&1
echo "rl rc $? end $(date -u +%FT%T) load $(cat /proc/loadavg)" >> $T
sleep 30; kill $copier
for d in "$ck"/*; do n=$(basename "$d"); [[ "$n" =~ ^[0-9]+$ ]] && [ ! -d /tmp/exp39/keep/$n ] && cp -a "$d" /tmp/exp39/keep/; done
last=$(ls /tmp/exp39/keep | sort -n | tail -1)
echo "eval of checkpoint $last start $(date -u +%FT%T) base $base" >> $T
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp39/keep/$last \
  --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=$run/eval_train_$last --compare=$base \
  > /tmp/exp39/eval_train.log 2>&1
echo "eval rc $? end $(date -u +%FT%T)" >> $T
