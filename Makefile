# Two set-up-and-go targets for a fresh machine (each creates .venv and installs what it needs):
#   make demo   build the embedded demo atlas and run the nightly rebuild graph (graphs/demo.toml) on it
#   make test   run the test suite with coverage
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cytodask-installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cytodask demo --output demo-output

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --cov=cytodask --cov-report=term --cov-fail-under=80 tests

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python -m benchmarks --pipeline activity,differential,correlation --dataset demo

clean:
	rm -rf $(VENV) demo-output .coverage* htmlcov
