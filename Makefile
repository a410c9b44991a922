# Everything a fresh machine with only Python needs: `make run`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start nats-server, the store and the five services; prints the base URL.
run: $(STAMP)
	$(BIN)/python -m services

## The whole test suite (unit, integration, end-to-end) against real servers.
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

## Unit tests only (no servers).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

## Benchmarks; results are printed and written under .bench/.
bench: $(STAMP)
	$(BIN)/python tests/bench/bench_expressions.py
	$(BIN)/python tests/bench/bench_system.py
	$(BIN)/python tests/bench/bench_dispatcher.py
	$(BIN)/python tests/bench/bench_event_log.py
	$(BIN)/python tests/bench/bench_committer.py
	$(BIN)/python tests/bench/bench_latency_stages.py

clean:
	rm -rf .data .bench .pytest_cache
