"""The fleet's plan and the lightweight publishers' messages, which must be exactly the protocol."""

from __future__ import annotations

from datetime import datetime

import pytest

from cabinet_agent.common.protocol import (
    QOS,
    RETAINED,
    BirthMessage,
    Channel,
    EventMessage,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
    decode,
    parse_topic,
)
from simulators.fleet_messages import CabinetTemplates, iso_ts
from simulators.fleet_plan import Incident, IncidentScenario, plan_fleet

TS = iso_ts(1_796_000_000.25)


def test_the_default_fleet_is_the_district() -> None:
    fleet = plan_fleet()
    assert len(fleet) == 138
    assert sum(c.slots for c in fleet) == 2400
    assert {c.slots for c in fleet} == {8, 16, 32}
    assert set(Incident) == {c.incident for c in fleet}
    assert len({(c.site, c.cabinet) for c in fleet}) == 138
    assert plan_fleet() == fleet  # deterministic


@pytest.mark.parametrize("slots", [8, 16, 32])
def test_every_template_renders_a_valid_message(slots: int) -> None:
    (plan,) = plan_fleet(1, slots, seed=5)
    cabinet = CabinetTemplates(plan, telemetry_interval_s=60)
    expected = [(cabinet.status, StatusMessage), (cabinet.birth, BirthMessage),
                (cabinet.state, StateMessage),
                *[(t, TelemetryMessage) for t in cabinet.telemetry],
                *[(t, EventMessage) for t in cabinet.events]]
    for template, model in expected:
        seq = cabinet.next_seq()
        message = decode(template.topic, template.render(seq, TS))
        assert isinstance(message, model)
        assert (message.site, message.cabinet, message.seq) == (plan.site, plan.cabinet, seq)
        assert message.ts == datetime.fromisoformat(TS)
        assert message.boot_id == cabinet.boot_id
        channel = parse_topic(template.topic).channel
        assert (template.qos, template.retain) == (QOS[channel], channel in RETAINED)
        if isinstance(message, TelemetryMessage | StateMessage):
            assert len(message.devices) == 3
        if isinstance(message, TelemetryMessage):
            assert len(message.power_w) == len(message.states) == slots
        if isinstance(message, StateMessage):  # a slot changed just now, not months ago
            assert all(slot.since == message.ts for slot in message.slots)
        if isinstance(message, BirthMessage):
            assert message.slot_count == slots and message.telemetry_interval_s == 60
    assert parse_topic(cabinet.telemetry[0].topic).channel is Channel.TELEMETRY


def test_the_door_left_open_stays_open_after_the_last_return() -> None:
    plan = next(c for c in plan_fleet() if c.incident is Incident.DOOR_LEFT_OPEN)
    monday = datetime(2026, 11, 30)
    events = IncidentScenario(plan).events_between(monday, monday.replace(hour=23))
    doors = [e for e in events if e.kind == "door"]
    assert doors[-1].door_open is True and doors[-1].at.hour == 15 and doors[-1].at.minute == 20
