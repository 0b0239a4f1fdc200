#!/usr/bin/env bash
# Assemble docs/RESULTS.md from scripts/results_head.md (the prose) and docs/results/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
{ cat scripts/results_head.md
  for m in nsnet2 gtcrn dtln rnnoise spectral; do
    ls docs/results/${m}_*.json >/dev/null 2>&1 || continue
    echo "### $m"; echo
    python3 scripts/results_table.py $(ls docs/results/${m}_*.json)
  done; } > docs/RESULTS.md
