#!/bin/bash
# exp35: the `sft` stage from a clean clone of main, in one go, then its train-split evaluation
# and a parameter comparison with exp33's run a (same code path since a1ed048).
export RL2VLA_VENV=/work/main/.venv
cd /tmp/clone35
T=/tmp/exp35/times.txt
echo "clone $(git rev-parse --short HEAD)" > $T
echo "sft start $(date -Is) load $(cat /proc/loadavg)" >> $T
/usr/bin/time -v experiments/cpu.sh sft /tmp/exp35/run > /tmp/exp35/sft.log 2>&1
echo "sft rc $? end $(date -Is) load $(cat /proc/loadavg)" >> $T
./run.sh python experiments/diagnostics/same_run.py /tmp/exp35/run /tmp/exp33/a > /tmp/exp35/same_run.txt 2>&1
echo "same_run rc $? end $(date -Is)" >> $T
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp35/run/sft \
  --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=/tmp/exp35/run/eval_train \
  --compare=/tmp/exp33/a/eval_train > /tmp/exp35/eval_train.log 2>&1
echo "eval rc $? end $(date -Is)" >> $T
# then (started by hand after the above): the same policy on all 17 settings of `ours`, as exp20/exp30 evaluated
# ./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp35/run/sft \
#   --layout=narrow_all --seeds=0 --episodes=16 --out=/tmp/exp35/run/eval_ours
