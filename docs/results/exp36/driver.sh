#!/bin/bash
# exp36: the `sft` stage from a clean clone of main on a freshly set-up machine (the venv made by
# `./run.sh setup` this session), then its 200 train-split episodes paired with exp35's policy
# (docs/results/exp35/eval_train) and its SFT metrics compared with exp35's line by line.
export RL2VLA_VENV=/work/main/.venv
cd /tmp/clone36
T=/tmp/exp36/times.txt
echo "clone $(git rev-parse --short HEAD)" > $T
echo "sft start $(date -Is) load $(cat /proc/loadavg)" >> $T
/usr/bin/time -v experiments/cpu.sh sft /tmp/exp36/run > /tmp/exp36/sft.log 2>&1
echo "sft rc $? end $(date -Is) load $(cat /proc/loadavg)" >> $T
cmp /tmp/exp36/run/sft/metrics.jsonl /work/main/docs/results/exp35/sft_metrics.jsonl > /tmp/exp36/metrics_cmp.txt 2>&1
echo "metrics cmp rc $? $(date -Is)" >> $T
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp36/run/sft \
  --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=/tmp/exp36/run/eval_train \
  --compare=/work/main/docs/results/exp35/eval_train > /tmp/exp36/eval_train.log 2>&1
echo "eval rc $? end $(date -Is)" >> $T
