from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import Broker, VictoriaMetrics, start_mosquitto, start_victoria_metrics


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
