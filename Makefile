# First two commands on a fresh machine: `make demo`, then `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test test-all bench bench-compare docs venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/rexjax explain third_party/images/ladybird.jpg --out out/demo

# Two pytest workers (most test time is single-threaded XLA compilation; CI has 2 cores);
# a test file stays on one worker so module fixtures are built once. TEST_WORKERS=0: no workers.
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadfile)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q $(XDIST)

test-all: $(TEST_STAMP)
	$(BIN)/python -m pytest -q $(XDIST) -m "slow or not slow"

# ReX's images/s against the bare model's, per vendored image (benchmarks/throughput.py);
# BENCH_ARGS="--limit 2 --rex.search.iters 2" for a smoke run.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.throughput --images third_party/images $(BENCH_ARGS)

# rexjax against the ReX tool (rex-xai 0.4.1, torch) in one run on the validation photos
# (third_party/validation, never tuned on; benchmarks/compare.py); builds
# .venv-bench on first use. Needs a quiet machine; BENCH_ARGS="--limit 1 --seeds 1
# --rex.search.iters 2 --tool_iters 2" for a smoke run, BENCH_ARGS="--rex.search.iters=8" (any
# RexConfig field, rexjax/configs/rex.py) for another rexjax budget. BENCH_ARGS=--onnx: both
# tools run Lite0 as one ONNX file (the tool under onnxruntime, rexjax through models.load),
# exported once into out/onnx/ with .venv-export (built on first use).
bench-compare: $(STAMP)
	$(BIN)/python -m benchmarks.compare $(BENCH_ARGS)

# docs/benchmarks.md and each study's results README, written from the results files.
docs: $(STAMP)
	$(BIN)/python -m benchmarks.docs

clean:
	rm -rf out .pytest_cache
