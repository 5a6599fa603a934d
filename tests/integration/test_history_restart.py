"""A slot's history and the charge sessions survive a restart of the collector: the real
cabinet-server (with its store in the state dir) receives a cabinet's states and a session over a
real Mosquitto, is stopped, and a new one on the same state dir shows the same history."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Channel,
    ChargeSession,
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    SessionEnd,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    encode,
    topic_for,
)
from tests.integration.test_server_ingest import ServerFactory, publisher, start_server  # noqa: F401
from tests.support.procs import wait_until

BOOT = "c" * 32
_SEQ = itertools.count(1)


def _env(site: str) -> dict[str, Any]:
    return {"v": 1, "site": site, "cabinet": "k1", "boot_id": BOOT, "seq": next(_SEQ),
            "ts": datetime.now(UTC), "clock_synced": True}


def _state(site: str, states: list[SlotState], since: datetime) -> bytes:
    return encode(StateMessage(**_env(site), door=DoorState.CLOSED, mains=MainsState.ON,  # type: ignore[arg-type]
                               temperature_c=20.0, devices=[], slots=[
                                   SlotSnapshot(slot=n, state=s, power_w=0.0, since=since)
                                   for n, s in enumerate(states, 1)]))


def _history(server: Any, site: str, hours: int = 48) -> tuple[list[tuple[str, str]], list[float]]:
    found = server.get(f"/api/cabinets/{site}/k1/slots/1/history?hours={hours}")
    return ([(t["at"], t["state"]) for t in found["transitions"]],
            [s["energy_wh"] for s in found["sessions"]])


def test_the_history_and_the_sessions_survive_a_restart(
        start_server: ServerFactory, publisher: Callable[..., None]) -> None:  # noqa: F811
    site = f"it-{uuid.uuid4().hex[:10]}"
    first = start_server(tsdb=False, state="state-history")
    first.wait_connected()
    first.place("H-1", site, "k1", 1)
    # status, birth and state retained, as an agent publishes them: the new collector gets them
    publisher(topic_for(site, "k1", Channel.STATUS),
              encode(StatusMessage(**_env(site), status=AgentStatus.ONLINE)), retain=True)  # type: ignore[arg-type]
    publisher(topic_for(site, "k1", Channel.BIRTH), encode(BirthMessage(
        **_env(site), agent_version="0.2", config_hash="00000000", cabinet_model="m",  # type: ignore[arg-type]
        slot_count=2, poll_interval_s=1.0, telemetry_interval_s=10.0,
        slots=[SlotInfo(slot=1), SlotInfo(slot=2)])), retain=True)
    start = datetime.now(UTC) - timedelta(hours=3)
    for hours, states in ((0, [SlotState.CHARGING, SlotState.EMPTY]),
                          (1, [SlotState.CHARGED, SlotState.EMPTY]),
                          (2, [SlotState.EMPTY, SlotState.CHARGING])):
        publisher(topic_for(site, "k1", Channel.STATE),
                  _state(site, states, start + timedelta(hours=hours)), retain=True)
    session = ChargeSession(slot=1, started_at=start, ended_at=start + timedelta(hours=1),
                            duration_s=3600.0, energy_wh=24.5, peak_w=20.0, end=SessionEnd.FULL)
    publisher(topic_for(site, "k1", Channel.EVENT), encode(EventMessage(
        **_env(site), event=EventKind.SESSION_ENDED, slot=1, session=session)))  # type: ignore[arg-type]
    before = wait_until(lambda: (h := _history(first, site)) and len(h[0]) >= 3 and h[1] and h, 30,
                        "the states and the session recorded")
    assert [state for _, state in before[0]] == ["charging", "charged", "empty"]
    assert before[1] == [24.5]
    assert first.process.stop() == 0

    second = start_server(tsdb=False, state="state-history")  # a new process, the same store
    wait_until(lambda: second.cabinet(site, "k1"), 20, "the retained birth in the new collector")
    assert _history(second, site) == before
    second.process.stop()
    third = start_server(tsdb=False, state="state-history")  # and once more: nothing doubled
    wait_until(lambda: third.cabinet(site, "k1"), 20, "the retained birth once more")
    assert _history(third, site) == before
    tagged = third.get("/api/inventory?school=" + site)
    assert [(i["asset_tag"], i["slot"]) for i in tagged["ipads"]] == [("H-1", 1)]


def _last_school_day(today: date) -> date:
    day = today - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def test_the_school_report_is_the_same_after_a_restart(
        start_server: ServerFactory, publisher: Callable[..., None]) -> None:  # noqa: F811
    """A school day's states (from the last weekday before today), rolled up by the first
    collector's report; the second collector's report of that day is the same."""
    site = f"it-{uuid.uuid4().hex[:10]}"
    org = (f"[organisation]\nstate = 'SL'\ndistrict_team = 'it'\n[[organisation.teams]]\n"
           "id = 'it'\nname = 'IT'\n[[organisation.municipalities]]\nid = 'm'\n"
           f"name = 'Musterdorf'\n[[organisation.schools]]\nsite = '{site}'\n"
           "name = 'Grundschule Neustart'\nmunicipality = 'm'\n[[organisation.cabinets]]\n"
           f"school = '{site}'\nid = 'k1'\nname = 'Raum 1'\nslots = {{ 1 = 'R-1' }}\n")
    first = start_server(tsdb=False, state="state-report", extra=org)
    first.wait_connected()
    zone = ZoneInfo("Europe/Berlin")
    day = _last_school_day(datetime.now(zone).date())

    def at(hour: int) -> datetime:
        return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)

    publisher(topic_for(site, "k1", Channel.STATUS),
              encode(StatusMessage(**_env(site), status=AgentStatus.ONLINE)), retain=True)  # type: ignore[arg-type]
    publisher(topic_for(site, "k1", Channel.BIRTH), encode(BirthMessage(
        **_env(site), agent_version="0.2", config_hash="00000000", cabinet_model="m",  # type: ignore[arg-type]
        slot_count=1, poll_interval_s=1.0, telemetry_interval_s=10.0, slots=[SlotInfo(slot=1)])),
        retain=True)
    for hour, state in ((6, SlotState.CHARGED), (9, SlotState.EMPTY), (15, SlotState.CHARGING)):
        publisher(topic_for(site, "k1", Channel.STATE), _state(site, [state], at(hour)), retain=True)
    query = f"/api/reports?school={site}&from={day.isoformat()}&to={day.isoformat()}"
    wait_until(lambda: len(_history(first, site, 24 * 8)[0]) >= 3, 30, "the day's states recorded")
    before = first.get(query)
    assert first.process.stop() == 0
    second = start_server(tsdb=False, state="state-report", extra=org)
    wait_until(lambda: second.cabinet(site, "k1"), 20, "the retained birth in the new collector")
    after = second.get(query)
    for report in (before, after):  # "Stand" (as of) is the moment of asking: not compared
        report.pop("generated_at", None)
    assert after == before
    assert before["title"] == "Grundschule Neustart"
    if day not in holidays.country_holidays("DE", subdiv="SL", years=day.year):
        # charged at 07:30, charging (back) at 16:30: ready 1 of 1, none missing
        assert (before["total"]["ready"], before["total"]["ready_known"],
                before["total"]["not_returned"]) == (1, 1, 0)
