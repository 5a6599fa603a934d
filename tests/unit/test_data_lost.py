"""Proving events lost (acknowledged by the broker, never delivered, not in the outbox any more),
and never calling a delay or the collector's own late start a loss."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from cabinet_agent.common.protocol import (
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    TelemetryMessage,
)
from server.alerts.rules import DataLost, DataLostSettings, RuleContext
from server.fleet import Fleet
from server.integrity import Integrity, SeqRanges
from server.org import Organisation
from server.schoolcal import Calendars

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
BOOT = "e" * 32


class Agent:
    """Builds one boot's messages as the agent numbers them."""

    def __init__(self, boot: str = BOOT) -> None:
        self.boot = boot
        self.seq = itertools.count()
        self.events = 0

    def _env(self) -> dict[str, Any]:
        return {"v": 1, "site": "gs-x", "cabinet": "a", "boot_id": self.boot,
                "seq": next(self.seq), "ts": NOW, "clock_synced": True}

    def event(self) -> EventMessage:
        self.events += 1
        return EventMessage(**self._env(), event=EventKind.DOOR_CHANGED, old="closed", new="open",
                            event_seq=self.events)

    def telemetry(self, queued: int = 0) -> TelemetryMessage:
        return TelemetryMessage(**self._env(), power_w=[], states=[], temperature_c=None,
                                door=DoorState.CLOSED, mains=MainsState.ON, devices=[],
                                outbox_queued=queued, event_seq=self.events)


def _feed(integrity: Integrity, *messages: Any) -> int:
    for message in messages:
        integrity.observe(message, NOW)
    return integrity.get("gs-x", "a").events_lost


def test_missing_ranges_are_counted_between_bounds() -> None:
    ranges = SeqRanges()
    for n in (1, 2, 5, 9, 10):
        ranges.add(n)
    assert ranges.missing_between(1, 10) == 5
    assert ranges.missing_between(3, 4) == 2
    assert ranges.missing_between(6, 5) == 0


def test_an_event_missing_after_the_outbox_emptied_and_a_later_event_arrived_is_lost() -> None:
    agent, integrity = Agent(), Integrity()
    e1, e2, lost, e4 = agent.event(), agent.event(), agent.event(), agent.event()
    assert _feed(integrity, e1, e2, e4) == 0  # a gap alone is no proof: it may still come
    assert _feed(integrity, agent.telemetry(queued=0)) == 0  # nothing after the telemetry yet
    assert _feed(integrity, agent.event()) == 1
    view = integrity.get("gs-x", "a")
    assert view.events_lost_at == NOW
    assert lost.event_seq == 3


def test_a_full_outbox_settles_nothing() -> None:
    agent, integrity = Agent(), Integrity()
    e1, _in_outbox, e3 = agent.event(), agent.event(), agent.event()
    assert _feed(integrity, e1, e3, agent.telemetry(queued=1), agent.event()) == 0


def test_a_late_arrival_takes_back_its_loss() -> None:
    agent, integrity = Agent(), Integrity()
    e1, late = agent.event(), agent.event()
    assert _feed(integrity, e1, agent.telemetry(queued=0), agent.event()) == 1
    assert _feed(integrity, late) == 0


def test_a_collector_that_starts_in_the_middle_of_a_boot_claims_nothing_before_it() -> None:
    agent, integrity = Agent(), Integrity()
    for _ in range(5):
        agent.event()  # delivered before this collector listened
    assert _feed(integrity, agent.telemetry(queued=0), agent.event(), agent.event(),
                 agent.telemetry(queued=0), agent.event()) == 0
    other, fresh = Agent("f" * 32), Integrity()
    for _ in range(3):
        other.event()
    assert _feed(fresh, other.event(), other.telemetry(queued=0), other.event()) == 0


def test_an_agent_without_event_numbers_is_never_judged() -> None:
    integrity = Integrity()
    seq = itertools.count()
    env = {"v": 1, "site": "gs-x", "cabinet": "a", "boot_id": BOOT, "ts": NOW, "clock_synced": True}
    for _ in range(3):
        integrity.observe(EventMessage(**env, seq=next(seq), event=EventKind.DOOR_CHANGED), NOW)
    assert integrity.get("gs-x", "a").events_lost == 0


def test_the_data_lost_alert_holds_for_a_day_then_resolves() -> None:
    agent, integrity, fleet = Agent(), Integrity(), Fleet()
    messages = [agent.event()]
    agent.event()  # lost
    messages += [agent.telemetry(queued=0), agent.event()]
    for message in messages:
        _, view = integrity.observe(message, NOW)
        fleet.apply(message, NOW, view)
    rule = DataLost(DataLostSettings())
    org = Organisation()
    calendars = Calendars("Europe/Berlin", "SL", [])

    def findings(at: datetime) -> list[Any]:
        return rule.evaluate(RuleContext(now=at, cabinets=fleet.snapshot(), org=org,
                                         calendars=calendars, receiving_since=NOW))

    (finding,) = findings(NOW + timedelta(hours=1))
    assert finding.labels["alertname"] == "data_lost" and finding.annotations["lost"] == "1"
    assert findings(NOW + timedelta(hours=24)) == []
