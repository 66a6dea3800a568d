#!/bin/bash
# exp38: the `sft` stage from a clean clone of main on another freshly set-up machine (the venv made
# by `./run.sh setup` this session); its demonstrations and parameters compared byte for byte with
# exp36's (same_run.py against docs/results/exp36/fingerprint.json), then its 200 train-split
# episodes paired with exp36's policy (docs/results/exp36/eval_train).
export RL2VLA_VENV=/work/main/.venv
cd /tmp/clone38
T=/tmp/exp38/times.txt
echo "clone $(git rev-parse --short HEAD)" > $T
echo "sft start $(date -Is) load $(cat /proc/loadavg)" >> $T
/usr/bin/time -v experiments/cpu.sh sft /tmp/exp38/run > /tmp/exp38/sft.log 2>&1
echo "sft rc $? end $(date -Is) load $(cat /proc/loadavg)" >> $T
./run.sh python experiments/diagnostics/same_run.py /tmp/exp38/run /work/main/docs/results/exp36/fingerprint.json > /tmp/exp38/same_run.txt 2>&1
echo "same_run rc $? $(date -Is)" >> $T
./run.sh python experiments/diagnostics/same_run.py --fingerprint /tmp/exp38/run > /tmp/exp38/fingerprint.json 2>/tmp/exp38/fingerprint.err
echo "fingerprint rc $? $(date -Is)" >> $T
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp38/run/sft \
  --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=/tmp/exp38/run/eval_train \
  --compare=/work/main/docs/results/exp36/eval_train > /tmp/exp38/eval_train.log 2>&1
echo "eval rc $? end $(date -Is) load $(cat /proc/loadavg)" >> $T
