# Two commands work on a fresh machine: `make demo` and `make test`. See README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: help demo test test-postgresql test-explore test-unit lint schema system-deps clean bench bench-fleet bench-alerts

help:
	@echo "make demo   - run a simulated school (3 cabinets, agents, broker, server) on this machine"
	@echo "make test   - install test dependencies (mosquitto, victoria-metrics, dev extras) and run all tests"
	@echo "make test-postgresql - every test with the store on PostgreSQL instead of SQLite"
	@echo "make test-explore - the property tests with 20x fresh examples (before resolving an issue)"
	@echo "make lint   - ruff"
	@echo "make bench  - agent poll cycle vs RTU wire time, RSS and CPU (docs/benchmarks.md)"
	@echo "make bench-fleet - collector ingest vs ceiling, fleet capacity, alert tick, fault-to-webhook latency"
	@echo "make bench-alerts - alert quality over a school term: recall, time to alert, false alerts"
	@echo "make schema - regenerate docs/schema/v1 from the protocol models"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install when pyproject.toml changes.
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -e '.[server]'
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $@ $(VENV)/.demo-installed

# Mosquitto when the system has it, otherwise the embedded pure-Python broker (extra "demo").
demo: $(VENV)/.demo-installed
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || \
	  $(BIN)/python -c "import amqtt" 2>/dev/null || \
	  $(BIN)/pip install --disable-pip-version-check -q -e '.[server,demo]'
	$(BIN)/cabinet-sim demo

system-deps:
	bash scripts/ensure-system-deps.sh

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

# Every test on SQLite, then the store's tests (marker "store") again on a real PostgreSQL.
test: system-deps $(VENV)/.dev-installed lint
	$(BIN)/python -m pytest
	LADEWACHE_TEST_STORE=postgresql $(BIN)/python -m pytest -q -p no:cacheprovider -m store

# Every test with the store on PostgreSQL (tests/support/store.py); CI runs it after `make test`.
test-postgresql: system-deps $(VENV)/.dev-installed
	LADEWACHE_TEST_STORE=postgresql $(BIN)/python -m pytest -p no:cacheprovider

# Every property test with many fresh examples (20x its own number): run before resolving an issue.
PROPERTY_TESTS = $(shell grep -rl "^from hypothesis" tests/unit)
test-explore: $(VENV)/.dev-installed
	HYPOTHESIS_PROFILE=explore-deep LADEWACHE_EXPLORE_FACTOR=$${LADEWACHE_EXPLORE_FACTOR:-20} \
	  $(BIN)/python -m pytest -p no:cacheprovider -o timeout=1800 $(PROPERTY_TESTS)

test-unit: $(VENV)/.dev-installed
	$(BIN)/python -m pytest tests/unit

# The agent's poll cycle over simulated RTU against the wire time, and its RSS/CPU (docs/benchmarks.md).
bench: system-deps $(VENV)/.dev-installed
	$(BIN)/python bench/poll_cycle.py

# Fleet scale (docs/benchmarks.md, docs/scaling.md): several minutes, loopback only.
bench-fleet: system-deps $(VENV)/.dev-installed
	$(BIN)/python bench/ingest_ceiling.py
	$(BIN)/python bench/fleet_capacity.py
	$(BIN)/python bench/alert_tick.py
	$(BIN)/python bench/fault_latency.py
	$(BIN)/python bench/fleet_agents.py

# Alert quality of the real classifier and rules over a simulated term (docs/benchmarks.md).
bench-alerts: system-deps $(VENV)/.dev-installed
	$(BIN)/python bench/alert_quality.py

schema: $(VENV)/.demo-installed
	$(BIN)/python -m cabinet_agent.common.protocol docs/schema/v1

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
