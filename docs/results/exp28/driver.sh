#!/usr/bin/env bash
# exp28: exp27's FiLM-EVI PPO run resumed from checkpoint 16 for 60 more minutes (90 in all); then evals.
cd /tmp/clone25
export RL2VLA_VENV=/work/main/.venv
run=/tmp/exp28/run; ck=$run/rl/film_evi/0/checkpoints
( while true; do for d in "$ck"/*; do n=$(basename "$d"); [[ "$n" =~ ^[0-9]+$ ]] && [ ! -d /tmp/exp28/keep/$n ] && cp -a "$d" /tmp/exp28/keep/; done; sleep 20; done ) &
copier=$!
echo "rl start $(date -u +%FT%T) load $(cat /proc/loadavg) budget 3600s" >> /tmp/exp28/times.txt
timeout --signal=INT --kill-after=60 3600 experiments/cpu.sh rl film_evi 0 $run --config.env.num_envs=24 \
  --config.rollout.episodes_per_env=4 --config.ppo.grad_accum_steps=24 --config.optim.actor_lr=3e-4 \
  --config.optim.actor_frozen_iterations=3 --config.train.iterations=300 --config.train.checkpoint_every=2 \
  > /tmp/exp28/rl.log 2>&1
echo "rl rc $? end $(date -u +%FT%T)" >> /tmp/exp28/times.txt
sleep 30; kill $copier
for d in "$ck"/*; do n=$(basename "$d"); [[ "$n" =~ ^[0-9]+$ ]] && [ ! -d /tmp/exp28/keep/$n ] && cp -a "$d" /tmp/exp28/keep/; done
last=$(ls /tmp/exp28/keep | sort -n | tail -1)
ev() { ./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment "$@"; echo "eval $* rc $? end $(date -u +%FT%T)" >> /tmp/exp28/times.txt; }
ev --checkpoint=/tmp/exp28/keep/$last --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=$run/eval_train_$last > /tmp/exp28/eval_last.log 2>&1
ev --checkpoint=/tmp/exp25/sft --settings=train --seeds=4,5,6,7 --episodes=25 --out=$run/eval_train_sft_s4-7 > /tmp/exp28/eval_sft.log 2>&1
ev --checkpoint=/tmp/exp28/keep/16 --settings=train --seeds=4,5,6,7 --episodes=25 --out=$run/eval_train_16_s4-7 > /tmp/exp28/eval_16.log 2>&1
ev --checkpoint=/tmp/exp28/keep/$last --layout=narrow_all --seeds=0 --episodes=16 --out=$run/eval_ood_$last > /tmp/exp28/eval_ood.log 2>&1
echo "done $(date -u +%FT%T)" >> /tmp/exp28/times.txt
