#!/bin/bash
# exp37: the `demos` stage with out-of-view robot links skipped (view culling), from a clean clone
# of the commit that adds it, compared byte by byte with exp36's demonstrations (made without it on
# this machine; exp36's SFT policy is linked in so that same_run.py's policy part compares equal
# files, and the verdict is the demonstrations'). Then the A/B benchmark of one demo process.
export RL2VLA_VENV=/work/main/.venv
cd /tmp/clone37
T=/tmp/exp37/times.txt
echo "clone $(git rev-parse --short HEAD)" > $T
echo "demos start $(date -Is) load $(cat /proc/loadavg)" >> $T
experiments/cpu.sh demos /tmp/exp37/run > /tmp/exp37/demos.log 2>&1
echo "demos rc $? end $(date -Is) load $(cat /proc/loadavg)" >> $T
ln -s /tmp/exp36/run/sft /tmp/exp37/run/sft
./run.sh python experiments/diagnostics/same_run.py /tmp/exp37/run /tmp/exp36/run > /tmp/exp37/same_run.txt 2>&1
echo "same_run rc $? end $(date -Is)" >> $T
./run.sh python benchmarks/demo_speed.py --episodes=8 --rounds=4 > /tmp/exp37/demo_speed.txt 2>&1
echo "demo_speed rc $? end $(date -Is) load $(cat /proc/loadavg)" >> $T
