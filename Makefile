# Developer habits, spelled out. `make test` is what CI runs (.ci/run) and what the README gives.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: dev dev-pgo test test-python test-rust lint fmt clean wheels bench bench-smoke

$(BIN)/maturin:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip maturin

# Build the extension in release mode (LTO) and install it, with test and uvloop extras.
dev: $(BIN)/maturin
	$(BIN)/maturin develop --release --extras test,standard

# The same build steered by a profile of the benchmark's smoke run (benches/pgo.py, ~5 min):
# what the benchmarks measure.
dev-pgo: dev
	$(BIN)/python benches/pgo.py develop

test: dev test-python test-rust

test-python:
	$(BIN)/python -m pytest tests

test-rust:
	PYO3_PYTHON=$(abspath $(BIN)/python) cargo test --release

# Build, install and serve the wheel on every CPython 3.11+ that pyenv has.
wheels: $(BIN)/maturin
	$(BIN)/python tests/smoke_wheels.py

# Side by side with uvicorn, granian and hypercorn, fasterapi built with PGO; writes
# docs/benchmarks.{md,png}. Not a test.
bench: dev
	rm -rf target/pgo/wheels
	$(BIN)/python benches/pgo.py wheel --out target/pgo/wheels
	$(PYTHON) benches/run.py --pgo-wheel target/pgo/wheels/*.whl

# One second per scenario, fasterapi only, on whichever build is installed: keeps the suite from
# rotting (CI runs it on the PGO build).
bench-smoke:
	$(BIN)/python benches/run.py --smoke

lint: $(BIN)/maturin
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	$(BIN)/ruff check python tests examples benches
	$(BIN)/ruff format --check python tests examples benches

fmt:
	cargo fmt
	$(BIN)/ruff format python tests examples benches

clean:
	rm -rf target $(VENV)
