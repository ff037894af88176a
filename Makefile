# Two entry points for a fresh machine with Python 3.11 and pip: `make demo` and `make test`.
# Each creates .venv and installs the project into it from PyPI only.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: demo test test-fast bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/python scripts/ppo2.py --env CartPole-v1 --num_envs 8 --n_steps 32 --nminibatches 1 \
	    --noptepochs 20 --lam 0.8 --gamma 0.98 --learning_rate lin_1e-3 --cliprange lin_0.2 \
	    --ent_coef 0.0 --total_timesteps 100000 --seed 0 --log_dir runs/demo-ppo2 --save_path runs/demo-ppo2/model
	$(BIN)/python scripts/evaluate.py --load_path runs/demo-ppo2/model --episodes 10

test: $(VENV)/.installed-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -ra

test-fast: $(VENV)/.installed-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -ra -m "not slow"

bench: $(VENV)/.installed-test
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) runs .pytest_cache
