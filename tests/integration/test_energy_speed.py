"""Issue 20: the energy of a known full charge, right at two speed factors of the simulator, on the
session, in the stored time series and in the school report. Every part a real process: the
simulated cabinet (real Modbus TCP), the agent (told the simulator's speed), Mosquitto, the
collector with its store, VictoriaMetrics.

The known charge (hardware.md §2): an iPad Pro (40.88 Wh) takes 57.2 Wh AC from empty to full. The
cabinet has one slot per way of measuring it: a PZEM-016 (u32 Wh counter, put just before its wrap
so that it wraps mid-charge), an SDM120 (float kWh counter) and a channel of the reference slot
meter (no counter: power integrated over the simulated time)."""

from __future__ import annotations

import json
import random
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from server.history.source import ReportSource
from server.org import Organisation
from server.schoolcal import Calendars
from simulators.physics import IPad, SlotPhysics
from tests.integration.test_server_ingest import ServerFactory, start_server  # noqa: F401
from tests.support.procs import ManagedProcess, console_script, wait_until
from tests.support.services import Broker, VictoriaMetrics
from tests.support.store import store_at

pytestmark = pytest.mark.integration

MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "energy-meters.toml"
IPAD_PRO_WH = 40.88
FULL_CHARGE_WH = 57.2  # hardware.md §2 (blog.didierstevens.com/2022/07/31/)
METHODS = {1: "counter", 2: "counter", 3: "integrated"}  # PZEM-016, SDM120, no counter
POLL_S = 0.1  # the agent's poll interval, wall clock: 30 and 120 simulated seconds


def _post(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(json.loads(response.read()))


def _charge_s() -> float:
    """Simulated seconds from empty to full (the physics is exact; noise only touches the meter)."""
    physics = SlotPhysics(ipad=IPad("PRO", soc=0.0, capacity_wh=IPAD_PRO_WH))
    seconds, rng = 0, random.Random(0)
    while physics.charging:
        physics.step(1.0, rng)
        seconds += 1
    return float(seconds)


@pytest.fixture
def processes() -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for process in reversed(started):
        process.stop()


@pytest.mark.parametrize("speed", [300.0, 1200.0])
def test_a_full_charge_has_the_reference_energy_on_the_session_in_the_tsdb_and_in_the_report(
        speed: float, tmp_path: Path, broker: Broker, victoria: VictoriaMetrics,
        start_server: ServerFactory, processes: list[ManagedProcess]) -> None:  # noqa: F811
    site, cabinet = f"it-{uuid.uuid4().hex[:10]}", "k1"
    sim = ManagedProcess("sim", [console_script("cabinet-sim"), "cabinet", "--model", str(MODEL),
                                 "--modbus-port", "0", "--control-port", "0", "--speed",
                                 str(speed), "--fill", "0", "--seed", "3"])
    processes.append(sim)
    fields = dict(p.split("=", 1) for p in sim.wait_for_line(lambda ln: ln.startswith("READY"))
                  .split()[1:])
    control, modbus_port = fields["control"], int(fields["modbus"].rsplit(":", 1)[1])
    _post(f"{control}/devices/pzem/replace", {"reading_wh": 2**32 - 20})  # wraps after 20 Wh
    server = start_server(tsdb=True, flush_interval_s=0.2, state="state")
    agent_config = tmp_path / "agent.toml"
    agent_config.write_text(
        f'[cabinet]\nsite = "{site}"\nid = "{cabinet}"\nmodel = "{MODEL}"\n'
        f'[buses.main]\nhost = "127.0.0.1"\nport = {modbus_port}\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f"[polling]\ninterval_s = {POLL_S}\ntelemetry_interval_s = 1.0\n"
        f"[simulation]\nspeed = {speed}\n", encoding="utf-8")
    processes.append(ManagedProcess("agent", [console_script("cabinet-agent"), "run", "--config",
                                              str(agent_config)]))
    wait_until(lambda: (c := server.cabinet(site, cabinet)) and len(c["slots"]) == 3, 30,
               "the cabinet polled and known to the collector")

    before = _get(f"{control}/state")["slots"]
    for slot in METHODS:
        _post(f"{control}/slots/{slot}/insert", {"soc": 0.0, "capacity_wh": IPAD_PRO_WH})

    def stored() -> dict[int, dict[str, Any]] | None:
        found = {slot: server.get(f"/api/cabinets/{site}/{cabinet}/slots/{slot}/history?hours=2")
                 ["sessions"] for slot in METHODS}
        return {slot: s[0] for slot, s in found.items()} if all(found.values()) else None

    sessions = wait_until(stored, 3 * _charge_s() / speed + 30, "three sessions stored")
    after = _get(f"{control}/state")["slots"]
    charge_s = _charge_s()
    for slot, method in METHODS.items():
        session = sessions[slot]
        truth_wh = after[slot - 1]["energy_wh"] - before[slot - 1]["energy_wh"]
        assert (session["end"], session["energy_method"]) == ("full", method), session
        assert session["energy_wh"] == pytest.approx(FULL_CHARGE_WH, rel=0.03), session
        assert session["energy_wh"] == pytest.approx(truth_wh, rel=0.01 if slot == 1 else 0.03)
        # simulated seconds: an agent that counted its own would say 1/300 or 1/1200 of this
        assert session["duration_s"] == pytest.approx(charge_s, rel=0.03), session
        assert session["taper_wh"] and session["taper_wh"] > 0

    # The stored time series: one point per session, at its end, with the method as a tag.
    def exported() -> list[dict[str, Any]] | None:
        found = victoria.export(f'session_energy_wh{{site="{site}",cabinet="{cabinet}"}}')
        return found if len(found) == 3 else None

    series = wait_until(exported, 20, "the sessions in VictoriaMetrics")
    for found in series:
        slot = int(found["metric"]["slot"])
        assert found["metric"]["energy_method"] == METHODS[slot]
        assert found["values"] == [pytest.approx(sessions[slot]["energy_wh"])]

    # The school report of the day, as the dashboard makes it (the day rolled up once it is over:
    # the report's clock says tomorrow), from the collector's store.
    assert server.process.stop() == 0
    org = Organisation.model_validate({
        "district": "Kreis", "state": "SL", "district_team": "it",
        "teams": [{"id": "it", "name": "IT"}], "municipalities": [{"id": "m", "name": "Musterdorf"}],
        "schools": [{"site": site, "name": "Grundschule Tempo", "municipality": "m"}]})
    day = datetime.fromisoformat(sessions[1]["ended_at"]).astimezone(org.zone).date()
    tomorrow = datetime.combine(day + timedelta(days=1), datetime.min.time(), org.zone)
    reports = ReportSource(store_at(tmp_path / "state"), org, Calendars(org.zone, org.state, []),
                           None, None, 0.30, clock=lambda: tomorrow.astimezone(UTC))
    report = reports.report([site], day, day)
    assert report.total.sessions == 3
    assert report.total.energy_kwh == pytest.approx(3 * FULL_CHARGE_WH / 1000, rel=0.03)
    assert report.total.energy_kwh == pytest.approx(
        sum(s["energy_wh"] for s in sessions.values()) / 1000, rel=1e-9)
