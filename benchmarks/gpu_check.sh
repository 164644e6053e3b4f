#!/usr/bin/env bash
# The GPU checks of hamforge in one call (benchmarks/gpu_check.py): NCCL halo exchange, a short training of the GPU
# configuration (config/a-si-gpu.yaml over config.yaml) with throughput and memory, and bfloat16 mixed precision.
#   bash benchmarks/gpu_check.sh [TARGETS_DIR] [extra gpu_check.py options, e.g. --minutes 5 --out DIR]
# TARGETS_DIR defaults to results/a-Si/targets (the demo's learning targets; carry them to the GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
targets="${1:-results/a-Si/targets}"
shift || true
PY=python
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
exec "$PY" benchmarks/gpu_check.py "$targets" --config config.yaml --config config/a-si-gpu.yaml "$@"
