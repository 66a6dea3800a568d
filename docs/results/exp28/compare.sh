#!/usr/bin/env bash
cd /tmp/clone25; export RL2VLA_VENV=/work/main/.venv
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp28/keep/48 --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=/tmp/exp28/run/eval_train_48 --compare=/tmp/exp25/sft > /tmp/exp28/compare_train.log 2>&1
echo "compare train rc $? end $(date -u +%FT%T)" >> /tmp/exp28/times.txt
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp28/keep/48 --layout=narrow_all --seeds=0 --episodes=16 --out=/tmp/exp28/run/eval_ood_48 --compare=/tmp/exp25/eval/sft > /tmp/exp28/compare_ood.log 2>&1
echo "compare ood rc $? end $(date -u +%FT%T)" >> /tmp/exp28/times.txt
