from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support import store
from tests.support.explore import FACTOR
from tests.support.services import Broker, VictoriaMetrics, start_mosquitto, start_victoria_metrics

# CI runs the same examples every time (a red main must mean a regression, not a new draw);
# local runs explore new ones. Set HYPOTHESIS_PROFILE=explore to explore in CI too.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
# make test-explore: many fresh draws (each test's own number, times LADEWACHE_EXPLORE_FACTOR).
settings.register_profile("explore-deep", print_blob=True, max_examples=100 * FACTOR)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore"))



@pytest.fixture(scope="session", autouse=True)
def store_session() -> Iterator[store.TestStores | None]:
    """LADEWACHE_TEST_STORE=postgresql: one PostgreSQL for the session (tests/support/store.py),
    the ``[state] url`` of every collector and command the session starts, in process or not,
    module-scoped ones included."""
    stores = store.start_session()
    if stores is not None:
        os.environ[store.STORE_ENV] = stores.suite_url
    yield stores
    if stores is not None:
        os.environ.pop(store.STORE_ENV, None)
        stores.stop()


def _per_module(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("store_per_module") is not None


@pytest.fixture(scope="module", autouse=True)
def store_per_module(store_session: store.TestStores | None,
                     request: pytest.FixtureRequest) -> None:
    """A module marked ``store_per_module`` (its collector runs for the whole module) starts on
    the emptied suite database once, before its module-scoped fixtures."""
    if store_session is not None and _per_module(request):
        store_session.empty_suite()


@pytest.fixture(autouse=True)
def store_per_test(store_session: store.TestStores | None,
                   request: pytest.FixtureRequest) -> Iterator[None]:
    """On PostgreSQL, each test starts on the emptied suite database (per module where marked).
    The stores a test opened are closed after it."""
    if store_session is not None and not _per_module(request):
        store_session.empty_suite()
    yield
    store.close_all()


@pytest.fixture(autouse=True)
def fresh_agent_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's agents (in-process or subprocess) get an empty state directory: no test may
    replay an outbox another test or an earlier run left behind."""
    state = tmp_path_factory.mktemp("agent-state")
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    monkeypatch.setenv("XDG_STATE_HOME", str(state))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh Mosquitto on a free loopback port for one test."""
    b = start_mosquitto(tmp_path / "mosquitto")
    yield b
    b.process.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """One VictoriaMetrics for the session: tests keep apart by their own site/cabinet tags."""
    vm = start_victoria_metrics(tmp_path_factory.mktemp("victoria"))
    yield vm
    vm.process.stop()
