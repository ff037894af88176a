# Two entry points for a fresh machine with Python 3.11 and pip: `make demo` and `make test`.
# Each creates .venv and installs the project into it from PyPI only.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: demo test test-fast check-wheel bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-compare: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e ".[compare]"
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(VENV)/.installed-compare $@

# The main job: PPO1 (under the venv's mpirun) vs PPO2 on matched seeds, the table, then the figures.
# Resumable: a second `make demo` reuses the finished runs.
demo: $(VENV)/.installed-compare
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/tfppo-compare run smoke --out runs/compare
	$(BIN)/tfppo-compare report runs/compare/smoke

# Two pytest workers (pytest-xdist; an idle worker takes tests from the other one): most of the suite's time is
# single-threaded (TensorFlow start-up and tracing in the scripts' subprocesses), so one worker leaves a core idle.
PYTEST := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -ra -n 2 --dist worksteal

# `make test` also installs the built wheel into a fresh venv outside the checkout and runs the console
# scripts and the import-layer contract from an empty directory (.ci/check-wheel): what `pip install` users get.
test: $(VENV)/.installed-test
	.ci/check-wheel $(BIN)/python
	$(PYTEST)

check-wheel: $(VENV)/.installed-test
	.ci/check-wheel $(BIN)/python

test-fast: $(VENV)/.installed-test
	$(PYTEST) -m "not slow"

# tfppo vs Stable-Baselines3 side by side (the `bench` extra: SB3, CPU torch, mujoco, psutil, py-spy)
$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(BIN)/pip install --quiet -e ".[bench]"
	touch $@

bench: $(VENV)/.installed-bench
	PATH="$(CURDIR)/$(BIN):$$PATH" OMP_NUM_THREADS=1 $(BIN)/python scripts/bench.py

# The documentation site (MkDocs, built-in theme): site/ from docs/ and mkdocs.yml; --strict fails on a broken link.
$(VENV)/.installed-docs: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e ".[docs]"
	touch $@

docs: $(VENV)/.installed-docs
	$(BIN)/python -m mkdocs build --strict -d site

clean:
	rm -rf $(VENV) runs .pytest_cache
