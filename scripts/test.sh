#!/usr/bin/env bash
# The test command: lint, then the whole suite (2 workers; real subprocesses and tiny real models).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests bench
.venv/bin/python -m pytest -n 2 --durations=15 "$@"
