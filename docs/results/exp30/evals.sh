#!/usr/bin/env bash
# exp30 evaluations: the last checkpoint and one near 30 min, each paired with exp30's SFT policy
# on the same 200 train-split episodes (seeds 0-7 x 25) and the last one on the narrow OOD suite.
cd /tmp/clone30
export RL2VLA_VENV=/work/main/.venv
T=/tmp/exp30/times.txt; run=/tmp/exp30/run; last=$1; mid=$2
ev() { ./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment "$@"; echo "eval $* rc $? end $(date -u +%FT%T)" >> $T; }
ev --checkpoint=/tmp/exp30/keep/$last --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 \
   --out=$run/eval_train_$last --compare=$run/sft > /tmp/exp30/eval_train.log 2>&1
ev --checkpoint=/tmp/exp30/keep/$last --layout=narrow_all --seeds=0 --episodes=16 \
   --out=$run/eval_ood_$last --compare=$run/sft > /tmp/exp30/eval_ood.log 2>&1
ev --checkpoint=/tmp/exp30/keep/$mid --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 \
   --out=$run/eval_train_$mid --compare=$run/eval_train_$last/compare > /tmp/exp30/eval_mid.log 2>&1
echo "evals done $(date -u +%FT%T)" >> $T
