#!/usr/bin/env bash
# exp32: the sft stage a third time this day, from a clean clone of ba3e114 (demonstrations in seed
# order, simulator pinned), in one go; its 200 train-split episodes paired with exp30's SFT policy.
cd /tmp/clone32
export RL2VLA_VENV=/tmp/cicheck2/.venv
T=/tmp/exp32/times.txt
echo "sft start $(date -u +%FT%T) load $(cat /proc/loadavg)" >> $T
experiments/cpu.sh sft /tmp/exp32/run > /tmp/exp32/sft.log 2>&1
echo "sft rc $? end $(date -u +%FT%T)" >> $T
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp32/run/sft \
  --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=/tmp/exp32/run/eval_train \
  --compare=/tmp/exp30/run/eval_train_52/compare > /tmp/exp32/eval_train.log 2>&1
echo "eval rc $? end $(date -u +%FT%T)" >> $T
