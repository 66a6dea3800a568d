#!/usr/bin/env bash
# exp31: exp30's sft stage repeated, same clone, same command, same training seed (the preset's 0),
# in one go; its 200 train-split episodes paired with exp30's SFT policy; then the policy-gradient
# signal of 48-episode halves of 96-episode rollouts of exp30's SFT policy.
cd /tmp/clone30
export RL2VLA_VENV=/work/main/.venv
T=/tmp/exp31/times.txt
echo "sft start $(date -u +%FT%T) load $(cat /proc/loadavg)" >> $T
experiments/cpu.sh sft /tmp/exp31/run > /tmp/exp31/sft.log 2>&1
echo "sft rc $? end $(date -u +%FT%T)" >> $T
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp31/run/sft \
  --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=/tmp/exp31/run/eval_train \
  --compare=/tmp/exp30/run/eval_train_52/compare > /tmp/exp31/eval_train.log 2>&1
echo "eval rc $? end $(date -u +%FT%T)" >> $T
echo "signal start $(date -u +%FT%T) load $(cat /proc/loadavg)" >> $T
(cd /tmp/clone31 && ./run.sh python experiments/diagnostics/gradient_signal.py /tmp/exp30/run/sft /tmp/exp31/signal 24 5 4 \
  > /tmp/exp31/signal.log 2>&1)
echo "signal rc $? end $(date -u +%FT%T)" >> $T
