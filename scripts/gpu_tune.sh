#!/usr/bin/env bash
# `curbside tune select` on a lent GPU machine, where the repository travels without its venv or models.
#
#   scripts/gpu_tune.sh prepare [--consult]  here: .gpu/ (data, the base GGUF in three parts, its sha256 and
#                                        manifest) and .whl/ (the pinned transformers, peft and gguf wheels)
#   scripts/gpu_tune.sh stash            there: keep the carried .gpu/ files in /tmp/curbside-stash
#   scripts/gpu_tune.sh run OUT [args]   there: assemble, verify, select; args go to scripts/gpu_tune.py
#
# A call carries at most 64 MiB and carried paths do not outlive the call, so the device tool is called three
# times back to back (the machine stays warm for 30 s): `stash` carrying .gpu/gguf.part-00, .gpu/gguf.sha256,
# .gpu/manifest.json and .gpu/data; `stash` carrying .gpu/gguf.part-01; `run $OUT` carrying .gpu/gguf.part-02
# and .whl. `run` uses the machine's own python3 (its CUDA torch) and writes OUT/tune.log and OUT/tune.tgz (the
# published adapter and the run's card, metrics, predictions and loss curves; no checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
stash=/tmp/curbside-stash
case "${1:-}" in
prepare)
    rm -rf .gpu && mkdir -p .gpu .whl
    .venv/bin/curbside tune data --out .gpu/data "${@:2}"
    gguf=$(ls var/models/smollm2-135m-instruct/*.gguf)
    (cd "$(dirname "$gguf")" && sha256sum "$(basename "$gguf")") > .gpu/gguf.sha256
    split -n 3 -d "$gguf" .gpu/gguf.part-
    cp "$(dirname "$gguf")/manifest.json" .gpu/
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 -d .whl transformers==5.24.0 peft==0.21.2 gguf==0.19.0
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || printf '/.gpu/\n/.whl/\n' >> .git/info/exclude
    du -sh .gpu .whl
    ;;
stash)
    mkdir -p "$stash" && cp -r .gpu/. "$stash/" && ls "$stash"
    ;;
run)
    out=${2:?usage: scripts/gpu_tune.sh run OUT [args]}
    shift 2
    mkdir -p .gpu "$out" && cp -rn "$stash/." .gpu/ 2>/dev/null || true
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    root=/tmp/curbside-data
    model=$root/models/smollm2-135m-instruct
    mkdir -p "$model"
    cat .gpu/gguf.part-* > "$model/SmolLM2-135M-Instruct.Q4_1.gguf"
    cp .gpu/manifest.json "$model/"
    (cd "$model" && sha256sum -c "$OLDPWD/.gpu/gguf.sha256")
    { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"; } \
        | tee "$out/tune.log"
    python3 scripts/gpu_tune.py --root "$root" --data .gpu/data "$@" 2>&1 | tee -a "$out/tune.log"
    cd "$root"
    run=$(ls -d tuning/runs/*/ | tail -1)
    tar -czf "$out/tune.tgz" $(ls -d adapters 2>/dev/null) \
        $(find "$run" \( -name '*.png' -o -name '*.json' -o -name '*.jsonl' \) -size -3M -not -path '*checkpoint*')
    ;;
*)
    sed -n 2,13p "$0"
    exit 2
    ;;
esac
