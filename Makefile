# The two commands: `make demo` and `make test`. Both set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-vitok
TORCH  := torch==2.13.0

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]" "$(TORCH)"
	$(BIN)/python -c "import torch, vitok; assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__"
	$(BIN)/vitok weights fetch
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/vitok demo

lint: setup
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_vs_sdvae.py --size 256 512
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
