#!/usr/bin/env bash
# The first run on a GPU in one command, at most 8 minutes (bench/gpu_check.py says what it
# measures): speed, MFU and memory of every GPU preset, compile on and off, whether v2-105m fits
# 24 GiB, generation speed, and a shortened v1-29m pipeline.
#   scripts/gpu_check.sh OUT_DIR            on the GPU; writes OUT_DIR/gpu_check.{json,md}
#   scripts/gpu_check.sh OUT_DIR --tiny     the same code at tiny shapes on the CPU (a test)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" bench/gpu_check.py "$@"
