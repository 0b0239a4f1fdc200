#!/usr/bin/env bash
# Install streamsep with its test extras, check lint, format and import layers, run the test suite
# (README "Run the tests").
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[gui,test,dev]"
ruff check .
ruff format --check .
lint-imports
export QT_QPA_PLATFORM=offscreen
python3 -m pytest -q -p no:cacheprovider "$@"
