#!/usr/bin/env bash
# `curbside tune select` on a lent GPU machine, where the repository travels without its venv or models:
#   scripts/gpu_tune.sh OUT [--budget-minutes N] [--steps N]
# Run from anywhere; uses the machine's own python3 (its CUDA torch) plus the pinned wheels in .whl/.
# Needs in .gpu/: gguf.part-* (the base model's GGUF, split to fit a transfer) with gguf.sha256 and the
# model's manifest.json, and data/ (a `curbside tune data` directory, since the corpus chunker is not there).
# Writes OUT/tune.log and OUT/tune.tar.gz: the run directory without checkpoints, and the published adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/gpu_tune.sh OUT [--budget-minutes N] [--steps N]}
shift
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
root=/tmp/curbside-data
model=$root/models/smollm2-135m-instruct
mkdir -p "$model" "$out"
cat .gpu/gguf.part-* > "$model/SmolLM2-135M-Instruct.Q4_1.gguf"
cp .gpu/manifest.json "$model/"
(cd "$model" && sha256sum -c "$OLDPWD/.gpu/gguf.sha256")
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/tune.log"
python3 scripts/gpu_tune.py --root "$root" --data .gpu/data "$@" 2>&1 | tee -a "$out/tune.log"
run=$(ls -d "$root"/tuning/runs/*/ | tail -1)
tar -czf "$out/tune.tar.gz" --exclude='checkpoint-*' --exclude='*.pt' -C "$root" \
    "tuning/runs/$(basename "$run")" adapters
