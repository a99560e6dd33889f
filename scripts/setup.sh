#!/usr/bin/env bash
# One command: create .venv in the repo root and install codeling with its dev extras.
#   bash scripts/setup.sh
# GPU users: TORCH_SPEC="torch==2.x.y" bash scripts/setup.sh (default is the CPU build on local disk).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned, so the open range in pyproject.toml installs nothing more.
.venv/bin/python -m pip install -q "$TORCH_SPEC"
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/codeling --help >/dev/null
echo "codeling is set up: source .venv/bin/activate  (or use .venv/bin/codeling)"
