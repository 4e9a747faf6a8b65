# The two set-up commands README.md names, and `make lock`.
#
#   make quickstart   a virtual environment (.venv), torch, prov4ml; runs examples/quickstart.py
#   make test         the test extras into the same environment, then the test suite
#   make test-cluster the multi-node tests (two torchrun nodes, a two-node Ray cluster), one at a time
#   make lock         regenerates constraints.txt (the lock) after a change to pyproject.toml
#
# Every install goes through the lock, so pip takes one tested version of each
# package and never backtracks. An activated virtual environment is used as it
# is; otherwise the commands make and use .venv (VENV=... picks another).

PYTHON ?= python3
VENV ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)
BIN := $(VENV)/bin
LOCK := constraints.txt
PIP = $(BIN)/python -m pip install -c $(LOCK)
# Commands run as if the environment were activated (torchrun, prov4ml on PATH).
IN_VENV = PATH="$(abspath $(BIN)):$$PATH" VIRTUAL_ENV="$(abspath $(VENV))"

TORCH_VERSION := 2.13.0
# e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU build of torch on Linux,
# where PyPI's build of torch is the CUDA one (a few GB).
TORCH_INDEX ?=
TORCH = torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
UV := uv==0.13.9
# pip resolves the lock from package metadata alone from 24 on; a venv's bundled pip may be older.
PIP_VERSION := 26.3

.PHONY: quickstart test test-cluster lock benchmark

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "make: '$(PYTHON)' not found; install Python >= 3.10 or run 'make PYTHON=/path/to/python3 ...'" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "make: prov4ml needs Python >= 3.10 (torch $(TORCH_VERSION) does); '$(PYTHON)' is $$($(PYTHON) -V 2>&1). Run 'make PYTHON=python3.11 ...'" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { echo "make: could not create the virtual environment $(VENV); on Debian/Ubuntu: apt-get install python3-venv" >&2; rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install -q pip==$(PIP_VERSION)

quickstart: $(BIN)/python
	$(PIP) $(TORCH)
	$(PIP) -e .
	$(IN_VENV) $(BIN)/python examples/quickstart.py

test: $(BIN)/python
	$(PIP) $(TORCH)
	$(PIP) -e ".[test]"
	$(IN_VENV) $(BIN)/python -m pytest

# Slow and sensitive to load (several launches on loopback), so on their own, after `make test`.
test-cluster: $(BIN)/python
	$(IN_VENV) $(BIN)/python -m pytest -m cluster

# Pins every package of every extra (all, test, bench) for Python >= 3.10 on every
# platform, with torch held at the tested release. Versions already in the lock
# are kept where they still fit; `make lock UPGRADE=1` takes the newest instead.
lock: $(BIN)/python
	$(BIN)/python -m pip install -q $(UV)
	printf 'torch==$(TORCH_VERSION)\n' > $(VENV)/torch-pin.txt
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.10 \
		--extra all --extra test --extra bench -c $(VENV)/torch-pin.txt \
		$(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" -o $(LOCK)

benchmark: $(BIN)/python
	$(IN_VENV) $(BIN)/python benchmarks/hot_path.py
	$(IN_VENV) $(BIN)/python benchmarks/compare.py
	$(IN_VENV) $(BIN)/python benchmarks/scale.py
	$(IN_VENV) $(BIN)/python benchmarks/fuzz.py
	$(IN_VENV) $(BIN)/python benchmarks/collectors.py
	$(IN_VENV) $(BIN)/python benchmarks/graphs.py
