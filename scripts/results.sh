#!/usr/bin/env bash
# Reproduce the eval runs behind docs/RESULTS.md (needs ../shared; takes hours on 2 cores).
# Usage: scripts/results.sh [model ...]   — JSON goes to docs/lab/data/results/ (RESULTS_DIR overrides),
# tables via scripts/make_results.sh (a dated note in docs/lab/)
set -uo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
export STREAMSEP_MODEL_DIR=${STREAMSEP_MODEL_DIR:-$SHARED/models}
K=${K:-5}
run() {  # model dataset policy limit [extra...]
  local model=$1 ds=$2 pol=$3 lim=$4; shift 4
  local out=${RESULTS_DIR:-docs/lab/data/results}/${model}_${ds}_${pol}.json
  [ -f "$out" ] && return 0
  echo "== $model $ds $pol (limit $lim)"
  streamsep eval "$SHARED/data/pairs/$ds" --model "$model" --steps "$K" --policy "$pol" \
    --candidates 9 --limit "$lim" --json "$out" --quiet "$@"
}
for model in "${@:-nsnet2 rnnoise spectral gtcrn dtln}"; do
  for ds in noizeus leventure; do
    lim=32; [ "$ds" = leventure ] && lim=16
    run "$model" "$ds" oracle-sisdr "$lim"
    run "$model" "$ds" fixed "$lim"
    run "$model" "$ds" heuristic "$lim"
    run "$model" "$ds" proxy "$lim" --candidates 4
  done
done
for ds in noizeus leventure; do
  run nsnet2 "$ds" oracle-pesq 16
  run nsnet2 "$ds" dnsmos 8
done
