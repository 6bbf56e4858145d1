# emr-triage: every target has one job; `make test` composes what CI checks.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV          ?= .venv
SAM_VENV      ?= .venv-sam
BIN           := $(VENV)/bin
SAM           := $(SAM_VENV)/bin/sam
SAM_CLI       := aws-sam-cli==1.170.0
CHECKOV_VENV  ?= .venv-checkov
CHECKOV       := $(CHECKOV_VENV)/bin/checkov
CHECKOV_PKG   := checkov==3.3.30
# Named by the pin, so a new pin builds a fresh virtualenv instead of running the old one.
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_PKG)
REQUIREMENTS  := layers/dependencies/requirements.txt
# Phase one then phase two (logs land after the alert), then a deeper diagnosis (root cause behind the
# symptoms), then the on-call engineer acting from the alert (acknowledge, mute, /emr-triage, unmute).
DEMO_SCENARIO := events/scenarios/step-logs-land-after-the-alert events/scenarios/spark-step-memory-kill \
                 events/scenarios/acknowledge-mute-then-unmute
ENV           ?= default
REGION        ?= us-east-1

export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The first interpreter of the given versions that actually runs. pyenv installs shims for versions
# that are not active, so `command -v` alone is not enough: each candidate must start.
find_python = $(shell for v in $(1); do \
	  for c in python$$v $$(command -v pyenv >/dev/null 2>&1 && ls -d "$$(pyenv root)"/versions/$$v*/bin/python$$v 2>/dev/null | sort -rV); do \
	    if "$$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	      "$$c" -c 'import sys; print(sys.executable)'; exit 0; fi; \
	  done; done)

# The virtualenv's Python: Lambda's 3.13 when available, else the newest 3.11+.
PYTHON   ?= $(call find_python,3.13 3.12 3.11)
# `sam build` of a python3.13 function needs python3.13 on PATH (it builds without Docker).
PYTHON313 ?= $(call find_python,3.13)

.PHONY: help
help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# ---------------------------------------------------------------------------------------------------
# Environments
# ---------------------------------------------------------------------------------------------------
$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: no Python 3.11+ found (looked for python3.13, 3.12, 3.11 on PATH and in pyenv)"; exit 1; }
	@echo "creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)

$(VENV)/.local-installed: $(BIN)/python pyproject.toml $(REQUIREMENTS)
	$(BIN)/pip install -q -c $(REQUIREMENTS) -e '.[local]'
	@$(MAKE) --no-print-directory bytecode
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.local-installed
	$(BIN)/pip install -q -c $(REQUIREMENTS) -e '.[dev]'
	@touch $@

$(SAM):
	@test -n "$(PYTHON)" || { echo "error: no Python 3.11+ found for the SAM CLI"; exit 1; }
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q '$(SAM_CLI)'

# Its own virtualenv: checkov pins dozens of packages that must not meet the project's.
$(CHECKOV_STAMP):
	@test -n "$(PYTHON)" || { echo "error: no Python 3.11+ found for checkov"; exit 1; }
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q '$(CHECKOV_PKG)'
	@touch $@

.PHONY: venv dev bytecode
venv: $(VENV)/.local-installed  ## Create .venv with the project and its embedded local AWS
dev: $(VENV)/.dev-installed     ## ... plus the test and lint tools

# The package is installed editable, so its bytecode is not compiled at install time; with
# PYTHONDONTWRITEBYTECODE set it would be compiled again by every command (~30 ms of start-up).
bytecode:
	@$(BIN)/python -m compileall -q layers/common

# ---------------------------------------------------------------------------------------------------
# The main job
# ---------------------------------------------------------------------------------------------------
.PHONY: demo
demo: venv  ## Replay the bundled failed-Spark-step scenario on the embedded local AWS
	$(BIN)/emr-triage replay $(DEMO_SCENARIO)

# ---------------------------------------------------------------------------------------------------
# Checks (make test = everything CI runs)
# ---------------------------------------------------------------------------------------------------
.PHONY: test lint format typecheck validate scan pytest unit integration build-check
test: lint typecheck validate scan build-check pytest  ## Everything CI checks

lint: dev  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: dev  ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: dev  ## mypy (strict, pydantic plugin) on the package and each handler
	$(BIN)/mypy
	@for h in functions/*/handler.py; do echo "mypy $$h"; $(BIN)/mypy --no-error-summary "$$h" || exit 1; done

validate: dev $(SAM)  ## cfn-lint and `sam validate --lint` on template.yaml (and cfn-lint on the member template)
	$(BIN)/cfn-lint template.yaml layers/common/emr_triage/deploy/member-template.yaml
	$(SAM) validate --lint --region $(REGION) --template-file template.yaml
	AWS_DEFAULT_REGION=$(REGION) $(SAM_VENV)/bin/python tests/build/sam_transform_check.py

# Offline (--skip-download: no policy metadata fetched); fails on any failed check. A check that does not
# apply is skipped in template.yaml's Metadata, with its reason beside it (tests check there is one).
scan: $(CHECKOV_STAMP)  ## checkov (IaC security scanner) on template.yaml: 0 failed checks
	$(CHECKOV) --file template.yaml --framework cloudformation --skip-download --compact --quiet

build-check: build dev  ## `sam build`, then check the built layers (arm64 wheels, our package)
	EMR_TRIAGE_BUILD_DIR=.aws-sam/build $(BIN)/pytest -q tests/build

pytest: dev  ## Unit and integration tests
	$(BIN)/pytest

unit: dev
	$(BIN)/pytest tests/unit

integration: dev
	$(BIN)/pytest tests/integration

# ---------------------------------------------------------------------------------------------------
# Accuracy
# ---------------------------------------------------------------------------------------------------
.PHONY: accuracy
accuracy: venv  ## Verdicts against labelled logs: per set, per category, confusion, calibration
	$(BIN)/python tests/accuracy/run.py

# ---------------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------------
.PHONY: bench
bench: venv bytecode  ## Speed and memory figures, as `name: value` lines with ratios to a same-run baseline
	$(BIN)/python tests/bench/run.py

# ---------------------------------------------------------------------------------------------------
# Build and deploy
# ---------------------------------------------------------------------------------------------------
.PHONY: build deploy requirements clean
build: $(SAM)  ## sam build (no Docker; the layers get Lambda's arm64 wheels)
	@test -n "$(PYTHON313)" || { echo "error: sam build needs python3.13 (Lambda's runtime) on PATH or in pyenv"; exit 1; }
	PATH="$(dir $(PYTHON313)):$$PATH" $(SAM) build --config-env $(ENV)

deploy: build  ## sam deploy with samconfig.toml's environment ENV (default|prod)
	$(SAM) deploy --config-env $(ENV)

# A deploy rehearsal without AWS: packaged, translated by SAM, created on moto's CloudFormation (server mode
# on 127.0.0.1:PORT, a free port by default), then served until Ctrl-C for `emr-triage replay --aws` and
# `emr-triage incidents --aws` in another terminal. SCENARIO=<folders> seeds their clusters and logs.
.PHONY: deploy-local
deploy-local: venv $(SAM)  ## Deploy rehearsal on a local moto server (no AWS); SCENARIO=..., PORT=...
	$(BIN)/python -m emr_triage.local.deploy_local --root . $(if $(PORT),--port $(PORT)) \
	  $(foreach s,$(SCENARIO),--scenario $(s))

requirements: dev  ## Re-pin layers/dependencies/requirements.txt from pyproject.toml for Lambda
	$(BIN)/uv pip compile pyproject.toml --python-version 3.13 \
	  --python-platform aarch64-manylinux_2_28 --no-annotate -o $(REQUIREMENTS)

clean:  ## Remove build output and virtualenvs
	rm -rf .aws-sam $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .mypy_cache .ruff_cache .pytest_cache
