# The two set-up commands README.md names. torch==2.13.0 goes in first, and the
# constraints file keeps every later install from replacing it with a CUDA build.
PYTHON ?= python
PIP = $(PYTHON) -m pip install -c constraints.txt
# e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU build of torch on Linux
TORCH_INDEX ?=
TORCH = torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))

.PHONY: quickstart test benchmark

quickstart:
	$(PIP) $(TORCH)
	$(PIP) -e .
	$(PYTHON) examples/quickstart.py

test:
	$(PIP) $(TORCH)
	$(PIP) -e ".[test]"
	$(PYTHON) -m pytest

benchmark:
	$(PYTHON) benchmarks/hot_path.py
	$(PYTHON) benchmarks/compare.py
	$(PYTHON) benchmarks/scale.py
	$(PYTHON) benchmarks/fuzz.py
	$(PYTHON) benchmarks/collectors.py
	$(PYTHON) benchmarks/graphs.py
