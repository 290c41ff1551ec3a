#!/usr/bin/env bash
# The GPU check in one command: scripts/gpu_check.sh OUT.json [--smoke] [--budget-s S] [--hf-compile auto|off]
# Runs with the first of the repository's venv and python3 whose torch sees a GPU (a GPU image's own torch,
# where the venv holds the CPU build), else with the venv (for --smoke).
set -euo pipefail
cd "$(dirname "$0")/.."
candidates=()
[ -x .venv/bin/python ] && candidates+=(.venv/bin/python)
command -v python3 >/dev/null && candidates+=(python3)
PY=${candidates[0]:-python3}
for py in "${candidates[@]}"; do
  if "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    PY=$py
    break
  fi
done
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$PY" scripts/gpu_check.py "$@"
