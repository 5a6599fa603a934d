# Two commands work on a fresh machine: `make demo` and `make test`. See README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: help demo test test-unit lint schema system-deps clean bench bench-fleet

help:
	@echo "make demo   - run a simulated school (3 cabinets, agents, broker, server) on this machine"
	@echo "make test   - install test dependencies (mosquitto, victoria-metrics, dev extras) and run all tests"
	@echo "make lint   - ruff"
	@echo "make bench  - agent poll cycle vs RTU wire time, RSS and CPU (docs/benchmarks.md)"
	@echo "make bench-fleet - collector ingest vs ceiling, fleet capacity, alert tick, fault-to-webhook latency"
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

test: system-deps $(VENV)/.dev-installed lint
	$(BIN)/python -m pytest

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

schema: $(VENV)/.demo-installed
	$(BIN)/python -m cabinet_agent.protocol docs/schema/v1

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
