#!/bin/bash
cd /work/main
variants=(
""
"--xla_cpu_use_onednn=true"
"--xla_cpu_experimental_ynn_fusion_type=dot"
"--xla_cpu_use_onednn=true --xla_cpu_experimental_ynn_fusion_type=dot"
)
for round in 1 2 3; do
for v in "${variants[@]}"; do
  echo "== round $round flags [$v] $(uptime | sed 's/.*load/load/')"
  XLA_FLAGS="$v" timeout 300 ./run.sh python benchmarks/sft_step.py --repeats=9 2>&1 | grep -E "step|rror" | tail -2
done
done
