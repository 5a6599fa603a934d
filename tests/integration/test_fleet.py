"""``cabinet-sim fleet`` against a real Mosquitto and ``cabinet-server``: every cabinet arrives."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.fleet_plan import plan_fleet
from tests.support.procs import ManagedProcess, console_script, wait_until
from tests.support.services import Broker, VictoriaMetrics

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path, broker: Broker, victoria: VictoriaMetrics) -> Iterator[str]:
    conf = tmp_path / "server.toml"
    conf.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nclient_id = "fleet-test"\n'
        f'[tsdb]\nurl = "{victoria.url}"\nflush_interval_s = 0.1\n'
        '[http]\nhost = "127.0.0.1"\nport = 0\nauth = false\n', encoding="utf-8")
    process = ManagedProcess("server", [console_script("cabinet-server"), "run", "--config", str(conf)])
    yield process.wait_for_line(lambda line: line.startswith("READY"), 30).split("http=", 1)[1]
    process.stop()


def _fleet(http: str) -> dict[tuple[str, str], dict]:
    with urllib.request.urlopen(f"{http}/api/fleet", timeout=5) as response:
        cabinets = json.loads(response.read())["cabinets"]
    return {(c["site"], c["cabinet"]): c for c in cabinets}


def _run_fleet(broker: Broker, *args: str) -> ManagedProcess:
    fleet = ManagedProcess("fleet", [console_script("cabinet-sim"), "fleet", "--broker-port",
                                     str(broker.port), "--progress-s", "1", *args])
    fleet.wait_for_line(lambda line: line.startswith("READY"), 60)
    return fleet


def test_full_agents_bring_every_cabinet_into_the_fleet(broker: Broker, server: str) -> None:
    plans = plan_fleet(4)
    fleet = _run_fleet(broker, "--cabinets", "4", "--mode", "agents", "--processes", "2",
                       "--telemetry-s", "2")
    try:
        def all_there() -> bool:
            known = _fleet(server)
            return all(len(known.get((p.site, p.cabinet), {}).get("slots", [])) == p.slots
                       for p in plans)

        wait_until(all_there, 40, "all 4 cabinets with their slots in /api/fleet", interval=0.2)
        assert fleet.wait_for_line(lambda line: "agents online 4/4" in line, 20)
    finally:
        assert fleet.stop() == 0, fleet.output()[-3000:]


def test_lightweight_publishers_bring_every_cabinet_into_the_fleet(broker: Broker,
                                                                   server: str) -> None:
    plans = plan_fleet(60, 32, site_prefix="light")
    fleet = _run_fleet(broker, "--cabinets", "60", "--slots", "32", "--mode", "light",
                       "--site-prefix", "light", "--telemetry-s", "5")
    try:
        wait_until(lambda: all((p.site, p.cabinet) in _fleet(server) for p in plans), 30,
                   "all 60 light cabinets in /api/fleet", interval=0.2)
    finally:
        assert fleet.stop() == 0, fleet.output()[-3000:]
