#!/usr/bin/env bash
# exp33: the sft stage twice in a row from a clean clone of a1ed048 (demonstrations on fixed
# workers): are the two runs' demonstrations and SFT policies bit-identical? Then run a on exp30's
# 200 train-split episodes, paired with exp32's SFT policy.
cd /tmp/clone33
export RL2VLA_VENV=/work/main/.venv
T=/tmp/exp33/times.txt
for r in a b; do
  echo "sft $r start $(date -u +%FT%T) load $(cat /proc/loadavg)" >> $T
  experiments/cpu.sh sft /tmp/exp33/$r > /tmp/exp33/sft_$r.log 2>&1
  echo "sft $r rc $? end $(date -u +%FT%T)" >> $T
done
./run.sh python experiments/diagnostics/same_run.py /tmp/exp33/a /tmp/exp33/b > /tmp/exp33/same_run.txt 2>&1
echo "same_run rc $? end $(date -u +%FT%T)" >> $T
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp33/a/sft \
  --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=/tmp/exp33/a/eval_train \
  --compare=/tmp/exp32/run/eval_train > /tmp/exp33/eval_train.log 2>&1
echo "eval rc $? end $(date -u +%FT%T)" >> $T
