#!/usr/bin/env bash
# The CPU experiment of docs/results/cpu.md, one resumable command per stage:
#   experiments/cpu.sh demos DIR          scripted-expert demonstrations -> DIR/demos
#   experiments/cpu.sh sft DIR            demos if missing, then SFT -> DIR/sft
#   experiments/cpu.sh rl METHOD SEED DIR PPO/GRPO from DIR/sft -> DIR/rl/METHOD/SEED
#                                         METHOD: ppo_no_evi entropy_concat value_loss_weighting film_evi grpo
#   experiments/cpu.sh eval DIR           every checkpoint (DIR/sft, DIR/rl/*/*) on the whole `ours` suite
#   experiments/cpu.sh table DIR          the methods x categories table and learning curves -> DIR/table
#                                         (evaluations of further SFT training seeds, e.g. sft --config.seed=1,
#                                         in DIR/eval/sft_seed*, get a row of their own: the RL runs start
#                                         from DIR/sft, the SFT row)
#   experiments/cpu.sh all DIR            all of the above (SEEDS="0 1 2", METHODS as above)
# Every stage resumes: demos, SFT, RL and evaluation pick up where an interrupted run stopped, and
# a finished stage is skipped. All stages use the `experiment` preset of the config files
# (rl2vla_jax/config_base.py); extra arguments after DIR are passed to every python command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
METHODS="${METHODS:-ppo_no_evi entropy_concat value_loss_weighting film_evi grpo}"
SEEDS="${SEEDS:-0 1 2}"
usage() { sed -n '2,12p' "$0" >&2; exit 2; }
stage="${1:-}"; [ -n "$stage" ] || usage; shift
log() { echo "[cpu.sh $(date +%H:%M:%S)] $*" >&2; }

demos() {  # DIR [args]
  local dir="$1"; shift
  log "demos -> $dir/demos"
  ./run.sh python -m rl2vla_jax.collect_demos --config=configs/sft.py:experiment --out="$dir/demos" "$@"
}

sft() {  # DIR [args]
  local dir="$1"; shift
  [ -f "$dir/demos/dataset_statistics.json" ] || demos "$dir" "$@"
  log "sft -> $dir/sft"
  ./run.sh python -m rl2vla_jax.sft --config=configs/sft.py:experiment --workdir="$dir/sft" \
    --config.data_dir="$dir/demos" "$@"
}

rl() {  # METHOD SEED DIR [args]
  local method="$1" seed="$2" dir="$3"; shift 3
  case " ppo_no_evi entropy_concat value_loss_weighting film_evi grpo " in
    *" $method "*) ;; *) echo "error: unknown METHOD '$method'; choose one of: $METHODS" >&2; exit 2 ;;
  esac
  [ -d "$dir/sft/checkpoints" ] || { echo "error: no SFT checkpoint in $dir/sft; run: experiments/cpu.sh sft $dir" >&2; exit 2; }
  log "rl $method seed $seed -> $dir/rl/$method/$seed"
  ./run.sh python -m rl2vla_jax.train --config="configs/$method.py:experiment,seed=$seed" \
    --workdir="$dir/rl/$method/$seed" --config.init_from="$dir/sft" "$@"
}

evaluate() {  # DIR [args]
  local dir="$1"; shift
  local checkpoints=("$dir/sft")
  for run in "$dir"/rl/*/*; do [ -d "$run/checkpoints" ] && checkpoints+=("$run"); done
  for checkpoint in "${checkpoints[@]}"; do
    local name="${checkpoint#"$dir"/}"; name="${name//\//_}"
    log "eval $checkpoint -> $dir/eval/$name"
    ./run.sh python -m rl2vla_jax.eval --config=configs/eval.py:experiment --checkpoint="$checkpoint" \
      --out="$dir/eval/$name" "$@"
  done
}

table() {  # DIR [args]
  local dir="$1"; shift
  local args=(--evals="SFT=$dir/eval/sft") other="" extra
  for extra in "$dir"/eval/sft_seed*; do [ -d "$extra" ] && other+="${other:+,}$extra"; done
  [ -n "$other" ] && args+=(--evals="SFT (other training seeds)=$other")
  for method in $METHODS; do
    local evals="" runs=""
    for seed in $SEEDS; do
      [ -d "$dir/eval/rl_${method}_$seed" ] && evals+="${evals:+,}$dir/eval/rl_${method}_$seed"
      [ -f "$dir/rl/$method/$seed/summary.csv" ] && runs+="${runs:+,}$dir/rl/$method/$seed"
    done
    [ -n "$evals" ] && args+=(--evals="$method=$evals")
    [ -n "$runs" ] && args+=(--runs="$method=$runs")
  done
  log "table -> $dir/table"
  ./run.sh python -m rl2vla_jax.results "${args[@]}" --out="$dir/table" "$@"
}

case "$stage" in
  demos|sft|table) [ $# -ge 1 ] || usage; "$stage" "$@" ;;
  eval) [ $# -ge 1 ] || usage; evaluate "$@" ;;
  rl) [ $# -ge 3 ] || usage; rl "$@" ;;
  all)
    [ $# -ge 1 ] || usage; dir="$1"; shift
    sft "$dir" "$@"
    for seed in $SEEDS; do for method in $METHODS; do rl "$method" "$seed" "$dir" "$@"; done; done
    evaluate "$dir" "$@"
    table "$dir" ;;
  *) usage ;;
esac
