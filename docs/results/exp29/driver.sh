#!/usr/bin/env bash
# exp29 pilot: exp27/28's FiLM-EVI PPO with actor lr 1e-3 (3.3x), 25 min from exp25's SFT policy; then a paired eval.
while ! grep -q "^rc " /tmp/ci.log; do sleep 10; done
cd /tmp/clone25
export RL2VLA_VENV=/work/main/.venv
echo "rl start $(date -u +%FT%T) load $(cat /proc/loadavg) budget 1500s" >> /tmp/exp29/times.txt
timeout --signal=INT --kill-after=60 1500 experiments/cpu.sh rl film_evi 0 /tmp/exp29/run --config.env.num_envs=24 \
  --config.rollout.episodes_per_env=4 --config.ppo.grad_accum_steps=24 --config.optim.actor_lr=1e-3 \
  --config.optim.actor_frozen_iterations=3 --config.train.iterations=300 --config.train.checkpoint_every=2 \
  > /tmp/exp29/rl.log 2>&1
echo "rl rc $? end $(date -u +%FT%T)" >> /tmp/exp29/times.txt
sleep 15
./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint=/tmp/exp29/run/rl/film_evi/0 \
  --settings=train --seeds=0,1,2,3,4,5,6,7 --episodes=25 --out=/tmp/exp29/run/eval_train \
  --compare=/tmp/exp28/run/eval_train_48/compare > /tmp/exp29/eval.log 2>&1
echo "eval rc $? end $(date -u +%FT%T)" >> /tmp/exp29/times.txt
