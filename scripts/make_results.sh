#!/usr/bin/env bash
# Assemble the results tables (a dated lab note) from scripts/results_head.md (the prose) and
# docs/lab/data/results/*.json.  Usage: scripts/make_results.sh [OUT.md]
# (default: the note those JSON files were last rendered into; give a new dated name,
# docs/lab/YYYY-MM-DD-results.md, after a new measurement campaign, and update the summary in docs/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/lab/2026-12-01-results.md}
R=docs/lab/data/results
{ cat scripts/results_head.md
  for m in nsnet2 gtcrn dtln rnnoise spectral dfn3; do
    ls $R/${m}_*.json >/dev/null 2>&1 || continue
    echo "### $m"; echo
    python3 scripts/results_table.py $(ls $R/${m}_*.json)
  done; } > "$OUT"
echo "wrote $OUT"
