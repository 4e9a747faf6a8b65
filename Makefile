# The two set-up commands README.md names. torch==2.13.0 goes in first, and the
# constraints file keeps every later install from replacing it with a CUDA build.
PYTHON ?= python
PIP = $(PYTHON) -m pip install -c constraints.txt

.PHONY: quickstart test benchmark

quickstart:
	$(PIP) torch==2.13.0
	$(PIP) -e .
	$(PYTHON) examples/quickstart.py

test:
	$(PIP) torch==2.13.0
	$(PIP) -e ".[test]"
	$(PYTHON) -m pytest

benchmark:
	$(PYTHON) benchmarks/hot_path.py
	$(PYTHON) benchmarks/compare.py
	$(PYTHON) benchmarks/scale.py
	$(PYTHON) benchmarks/fuzz.py
	$(PYTHON) benchmarks/collectors.py
	$(PYTHON) benchmarks/graphs.py
