#!/bin/bash
cd /work/main
variants=(
""
"--xla_cpu_experimental_xnn_fusion_type=dot"
"--xla_cpu_experimental_xnn_fusion_type=dot,eltwise,reduce"
"--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY"
"--xla_cpu_use_onednn=true"
"--xla_cpu_prefer_vector_width=512"
"--xla_cpu_experimental_ynn_fusion_type=dot"
)
for round in 1 2; do
for v in "${variants[@]}"; do
  echo "== round $round flags [$v] $(uptime | sed 's/.*load/load/')"
  XLA_FLAGS="$v" timeout 300 ./run.sh python benchmarks/sft_step.py --repeats=7 2>&1 | grep -E "step|rror" | tail -2
done
done
