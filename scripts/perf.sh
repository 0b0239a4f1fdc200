#!/usr/bin/env bash
# The per-model benchmark runs behind the performance notes in docs/lab/ (one thread).
# JSON goes to docs/lab/data/perf/<today>/ unless PERF_DIR says otherwise; render with
# python3 scripts/perf_table.py DIR/*.json.  Per-preset figures for docs/PERFORMANCE.md: scripts/perf_presets.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 STREAMSEP_MODEL_DIR=${STREAMSEP_MODEL_DIR:-../shared/models}
S=${SECONDS_PER_CONFIG:-10}
D=${PERF_DIR:-docs/lab/data/perf/$(date -u +%F)}
mkdir -p "$D"
streamsep bench --model nsnet2 --steps 0,1,4 --candidates 1 --block 160,1024 --threads 1 --seconds $S --json $D/nsnet2_fixed.json
streamsep bench --model nsnet2 --steps 4 --candidates 4 --policy proxy --block 160,800 --threads 1 --seconds $S --json $D/nsnet2_proxy.json
# the same with every candidate run in every block: the cost of a block where the proxy acts
streamsep bench --model nsnet2 --steps 4 --candidates 4 --policy proxy --block 160,800 --threads 1 --seconds $S --all-candidates --json $D/nsnet2_proxy_all_candidates.json
streamsep bench --model rnnoise --steps 0,2 --block 480 --threads 1 --seconds $S --json $D/rnnoise.json
streamsep bench --model spectral --steps 0,2 --block 160 --threads 1 --seconds $S --json $D/spectral.json
streamsep bench --model gtcrn --steps 0,2 --block 256 --threads 1 --seconds $S --json $D/gtcrn.json
streamsep bench --model dtln --steps 0,2 --block 128 --threads 1 --seconds $S --json $D/dtln.json
