#!/bin/bash
# Stops exp39's training once checkpoint 32 is kept (the session's time: the evaluation and CI must fit).
until [ -d /tmp/exp39/keep/32 ]; do sleep 10; done
sleep 15
echo "stopped after checkpoint 32 by stop_at_32.sh $(date -u +%FT%T)" >> /tmp/exp39/times.txt
pkill -INT -f "rl2vla_jax.train --config=configs/film_evi.py:experiment,seed=0 --workdir=/tmp/exp39"
