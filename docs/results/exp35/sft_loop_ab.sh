#!/bin/bash
cd /work/main
run() {  # name, extra env/args
  local name=$1; shift
  rm -rf /tmp/prof/sft_$name
  echo "== $name $(uptime | sed 's/.*load/load/')"
  env "$@" ./run.sh python -m rl2vla_jax.sft --config=configs/sft.py:experiment --workdir=/tmp/prof/sft_$name \
    --config.data_dir=/tmp/exp33/a/demos --config.sft.steps=1200 --config.sft.eval_every=400 \
    --config.sft.checkpoint_every=100000 ${ARGS:-} > /tmp/prof/sft_$name.log 2>&1
  python3 - /tmp/prof/sft_$name/metrics.jsonl <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
prev_t = None
for r in rows:
    t = r["step"] / r["steps_per_s"]
    if prev_t is not None:
        print(f"  steps {r['step']-400}-{r['step']}: {(t-prev_t)/400*1000:.1f} ms/step (incl. one validation), data wait {r['data_wait_fraction']:.3f}")
    prev_t = t
PY
}
run default X=1
ARGS="--config.sft.num_threads=1" run threads1 X=1
run default2 X=1
run onednn XLA_FLAGS=--xla_cpu_use_onednn=true
