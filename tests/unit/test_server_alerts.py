"""Alert engine timelines with a fake clock: t is seconds after T0, nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    DoorState,
    MainsState,
    SlotInfo,
    SlotState,
    StatusMessage,
    TelemetryMessage,
)
from server.alerts import (
    Alert,
    AlertEngine,
    AlertState,
    CabinetOffline,
    StoredState,
    fingerprint,
)
from server.fleet import Fleet
from server.i18n import alert_summary

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
BOOT_A = "a" * 32
BOOT_B = "b" * 32
PENDING_S = 60.0


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, t: float) -> None:
        self.now = T0 + timedelta(seconds=t)


def _env(clock: FakeClock, boot: str, cabinet: str = "c1") -> dict[str, object]:
    return {"v": 1, "site": "gym-nord", "cabinet": cabinet, "boot_id": boot, "seq": 0,
            "ts": clock(), "clock_synced": True}


class Timeline:
    """Fleet + engine driven by one fake clock; each push also ticks, like the running server."""

    def __init__(self, *, pending_s: float = PENDING_S, factor: float = 3.0,
                 min_silence_s: float = 5.0, retention_s: float = 3600.0) -> None:
        self.clock = FakeClock()
        self.fleet = Fleet()
        self.store = StoredState.in_memory()
        self.rule = CabinetOffline(pending_s=pending_s, silence_factor=factor,
                                   min_silence_s=min_silence_s)
        # Since when the collector receives (None: its broker connection is down).
        self.receiving_since: datetime | None = T0
        # Cabinets out of earshot (their broker connection down: server/brokers.py), by id.
        self.deaf: set[str] = set()
        self.engine = AlertEngine([self.rule], self.store, self.fleet, self.clock,
                                  resolved_retention=timedelta(seconds=retention_s),
                                  receiving_since=lambda: self.receiving_since,
                                  deaf=lambda: (lambda key: key[1] in self.deaf) if self.deaf
                                  else None)

    def at(self, t: float) -> Timeline:
        self.clock.at(t)
        self.engine.tick()
        return self

    def push(self, t: float, *messages: object) -> None:
        self.clock.at(t)
        for message in messages:
            self.fleet.apply(message, self.clock())  # type: ignore[arg-type]
        self.engine.tick()

    def status(self, status: AgentStatus, boot: str = BOOT_A) -> StatusMessage:
        return StatusMessage(**_env(self.clock, boot), status=status)  # type: ignore[arg-type]

    def birth(self, boot: str = BOOT_A, interval_s: float = 10.0) -> BirthMessage:
        return BirthMessage(**_env(self.clock, boot), agent_version="0.1.0",  # type: ignore[arg-type]
                            config_hash="abcdef12", cabinet_model="test-2", slot_count=2,
                            slots=[SlotInfo(slot=1, asset_tag="IPAD-001"), SlotInfo(slot=2)],
                            poll_interval_s=1.0, telemetry_interval_s=interval_s)

    def telemetry(self, boot: str = BOOT_A) -> TelemetryMessage:
        return TelemetryMessage(**_env(self.clock, boot), power_w=[12.5, None],  # type: ignore[arg-type]
                                states=[SlotState.CHARGING, SlotState.EMPTY], temperature_c=22.0,
                                door=DoorState.CLOSED, mains=MainsState.ON, devices=[])

    def online(self, t: float, boot: str = BOOT_A, interval_s: float = 10.0) -> None:
        self.clock.at(t)
        self.push(t, self.status(AgentStatus.ONLINE, boot), self.birth(boot, interval_s),
                  self.telemetry(boot))

    def states(self) -> list[AlertState]:
        return [a.state(self.clock()) for a in self.store.all()]

    def only(self) -> Alert:
        alerts = self.store.all()
        assert len(alerts) == 1, alerts
        return alerts[0]


def test_last_will_is_pending_then_firing_then_resolved() -> None:
    tl = Timeline()
    tl.online(0)
    assert tl.store.all() == []
    tl.push(10, tl.status(AgentStatus.OFFLINE))
    for t in (10, 11, 40, 69.9):
        assert tl.at(t).states() == [AlertState.PENDING], t
    for t in (70, 71, 200):
        assert tl.at(t).states() == [AlertState.FIRING], t
    alert = tl.only()
    assert alert.labels == {"alertname": "cabinet_offline", "severity": "critical",
                            "site": "gym-nord", "cabinet": "c1"}
    assert alert.annotations["reason"] == "lwt"
    assert alert.active_at == T0 + timedelta(seconds=10)
    assert alert.starts_at == T0 + timedelta(seconds=70)
    assert alert.ends_at is None

    tl.online(300)
    assert tl.states() == [AlertState.RESOLVED]
    assert tl.only().ends_at == T0 + timedelta(seconds=300)
    assert tl.store.active() == []


def test_short_blip_never_fires_and_leaves_nothing_behind() -> None:
    tl = Timeline()
    tl.online(0)
    tl.push(10, tl.status(AgentStatus.OFFLINE))
    assert tl.at(30).states() == [AlertState.PENDING]
    tl.online(40)
    assert tl.store.all() == []
    assert tl.at(69).store.all() == []  # nor later, while it keeps talking (silent from 70)


def test_silence_fires_after_factor_times_interval_then_pending() -> None:
    tl = Timeline()
    tl.online(0, interval_s=10.0)  # silent after 3 × 10 s
    assert tl.at(30).store.all() == []
    assert tl.at(30.5).states() == [AlertState.PENDING]
    assert tl.only().annotations["reason"] == "silence"
    assert tl.only().annotations["last_seen_at"] == T0.isoformat()
    assert tl.at(90).states() == [AlertState.PENDING]
    assert tl.at(90.5).states() == [AlertState.FIRING]
    tl.push(100, tl.telemetry())
    assert tl.states() == [AlertState.RESOLVED]


def test_min_silence_wins_over_a_short_telemetry_interval() -> None:
    tl = Timeline(min_silence_s=30.0)
    tl.online(0, interval_s=1.0)  # 3 × 1 s would be 3 s; the floor is 30 s
    assert tl.at(29).store.all() == []
    assert tl.at(31).states() == [AlertState.PENDING]


def test_unknown_interval_uses_min_silence() -> None:
    tl = Timeline(min_silence_s=20.0)
    tl.push(0, tl.telemetry())  # no birth: interval unknown
    assert tl.at(20).store.all() == []
    assert tl.at(21).states() == [AlertState.PENDING]


def test_stopped_on_purpose_is_offline_with_reason_stopped() -> None:
    tl = Timeline(pending_s=0.0)
    tl.online(0)
    stopped = StatusMessage(**_env(tl.clock, BOOT_A), status=AgentStatus.STOPPED,  # type: ignore[arg-type]
                            reason="SIGTERM")
    tl.push(5, stopped)
    assert tl.states() == [AlertState.FIRING]
    assert tl.only().annotations == {"reason": "stopped", "detail": "SIGTERM"}


def test_reason_changes_keep_the_alert_and_its_times() -> None:
    tl = Timeline()
    tl.online(0)
    tl.at(31)  # silent
    first = tl.only()
    assert first.annotations["reason"] == "silence"
    tl.push(50, tl.status(AgentStatus.OFFLINE))
    second = tl.only()
    assert second.annotations["reason"] == "lwt"
    assert second.fingerprint == first.fingerprint
    assert (second.active_at, second.starts_at) == (first.active_at, first.starts_at)


def test_online_but_silent_is_not_resolved() -> None:
    tl = Timeline()
    tl.online(0)
    tl.push(10, tl.status(AgentStatus.OFFLINE))
    tl.at(100)
    tl.push(200, tl.status(AgentStatus.ONLINE))  # says online ...
    assert tl.states() == [AlertState.RESOLVED]  # ... and a status message is talking
    tl.at(231)  # ... but then nothing more: silent again, a new alert
    assert tl.states() == [AlertState.RESOLVED, AlertState.PENDING]


def test_recurrence_after_resolution_is_a_new_alert_with_the_same_fingerprint() -> None:
    tl = Timeline(pending_s=0.0)
    tl.online(0)
    tl.push(10, tl.status(AgentStatus.OFFLINE))
    tl.online(20)
    tl.push(30, tl.status(AgentStatus.OFFLINE))
    old, new = tl.store.all()
    assert old.fingerprint == new.fingerprint
    assert old.state(tl.clock()) is AlertState.RESOLVED
    assert new.state(tl.clock()) is AlertState.FIRING
    assert new.active_at == T0 + timedelta(seconds=30)


def test_resolved_alerts_are_purged_after_retention() -> None:
    tl = Timeline(pending_s=0.0, retention_s=100.0, min_silence_s=1000.0)
    tl.online(0)
    tl.push(10, tl.status(AgentStatus.OFFLINE))
    tl.online(20)
    assert tl.at(120).states() == [AlertState.RESOLVED]
    assert tl.at(121).store.all() == []


def test_power_loss_is_recorded_as_a_new_boot_after_offline() -> None:
    tl = Timeline()
    tl.online(0)
    tl.push(10, tl.status(AgentStatus.OFFLINE))
    tl.online(100, boot=BOOT_B)
    cabinet = tl.fleet.get("gym-nord", "c1")
    assert cabinet is not None
    (change,) = cabinet.boot_changes
    assert (change.previous_boot_id, change.boot_id, change.after_offline) == (BOOT_A, BOOT_B, True)
    assert change.offline_since == T0 + timedelta(seconds=10)


def test_a_stale_last_will_of_an_old_boot_is_ignored() -> None:
    tl = Timeline(pending_s=0.0)
    tl.online(0, boot=BOOT_B)
    tl.push(5, tl.status(AgentStatus.OFFLINE, boot=BOOT_A))
    assert tl.store.all() == []
    cabinet = tl.fleet.get("gym-nord", "c1")
    assert cabinet is not None and cabinet.boot_id == BOOT_B


def test_nothing_is_judged_while_the_collector_itself_cannot_receive() -> None:
    tl = Timeline()
    tl.online(0)
    tl.receiving_since = None  # our broker connection dropped at t=5
    assert tl.at(100).store.all() == []  # no alert storm: every cabinet would look silent
    tl.receiving_since = T0 + timedelta(seconds=100)  # back at t=100
    assert tl.at(130).store.all() == []  # silence counts from the reconnect
    assert tl.at(131).states() == [AlertState.PENDING]


def test_alerts_are_frozen_while_the_collector_cannot_receive() -> None:
    tl = Timeline(pending_s=0.0)
    tl.online(0)
    tl.push(10, tl.status(AgentStatus.OFFLINE))
    assert tl.states() == [AlertState.FIRING]
    tl.receiving_since = None
    tl.online(20)  # cannot really happen while disconnected, but must not resolve anything
    assert tl.states() == [AlertState.FIRING]
    tl.receiving_since = T0 + timedelta(seconds=25)
    assert tl.at(25).states() == [AlertState.RESOLVED]


def test_a_cabinet_out_of_earshot_is_not_silent_while_the_others_are_judged() -> None:
    """Its broker connection is down (one of two): whether it talks on at that broker or is gone,
    the collector cannot tell, so it is neither called silent nor cleared."""
    tl = Timeline()
    tl.online(0)
    other = StatusMessage(**_env(tl.clock, BOOT_B, cabinet="c2"),  # type: ignore[arg-type]
                          status=AgentStatus.ONLINE)
    tl.push(0, other)
    tl.deaf = {"c1"}  # c1 was last heard through the broker now unreachable
    assert [a.labels["cabinet"] for a in tl.at(200).store.all()] == ["c2"]  # c2 is silent
    assert tl.at(3600).states() == [AlertState.FIRING]  # and c1 still not, however long
    tl.deaf = set()
    tl.push(3601, tl.telemetry())  # heard again: judged again, from what it says
    assert [a.labels["cabinet"] for a in tl.store.active()] == ["c2"]


def test_an_alert_of_a_cabinet_out_of_earshot_stays_as_it_is() -> None:
    tl = Timeline(pending_s=0.0)
    tl.online(0)
    tl.push(10, tl.status(AgentStatus.OFFLINE))
    assert tl.states() == [AlertState.FIRING]
    tl.deaf = {"c1"}
    tl.online(20)  # a stale copy cannot resolve it while its connection is down
    assert tl.states() == [AlertState.FIRING]
    tl.deaf = set()
    assert tl.at(25).states() == [AlertState.RESOLVED]


def test_each_cabinet_has_its_own_alert() -> None:
    tl = Timeline(pending_s=0.0)
    tl.online(0)
    other = StatusMessage(**_env(tl.clock, BOOT_B, cabinet="c2"),  # type: ignore[arg-type]
                          status=AgentStatus.OFFLINE)
    tl.push(1, tl.status(AgentStatus.OFFLINE), other)
    assert sorted(a.labels["cabinet"] for a in tl.store.active()) == ["c1", "c2"]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"alertname": "cabinet_offline", "site": "s", "cabinet": "c"}, "26040a71088ccf2c"),
        ({"cabinet": "c", "site": "s", "alertname": "cabinet_offline"}, "26040a71088ccf2c"),
        ({"a": "bc"}, None),
        ({"ab": "c"}, None),
    ],
)
def test_fingerprints_are_stable_and_order_independent(labels: dict[str, str],
                                                       expected: str | None) -> None:
    value = fingerprint(labels)
    assert len(value) == 16
    if expected is not None:
        assert value == expected
    assert fingerprint(dict(reversed(list(labels.items())))) == value
    assert fingerprint({"a": "bc"}) != fingerprint({"ab": "c"})


def test_alert_values_are_validated() -> None:
    with pytest.raises(ValueError, match="alertname"):
        Alert({"site": "s"}, {}, T0, T0)
    with pytest.raises(ValueError, match="starts_at"):
        Alert({"alertname": "x"}, {}, T0, T0 - timedelta(seconds=1))


def test_duplicate_rule_names_are_refused() -> None:
    rule = CabinetOffline(pending_s=1, silence_factor=3, min_silence_s=1)
    with pytest.raises(ValueError, match="duplicate"):
        AlertEngine([rule, rule], StoredState.in_memory(), list, FakeClock())


@pytest.mark.parametrize(
    ("reason", "lang", "expected"),
    [
        ("lwt", "de", "Schrank c1 (gym-nord) ist offline: Verbindung verloren (Last Will)"),
        ("lwt", "en", "Cabinet c1 (gym-nord) is offline: connection lost (Last Will)"),
        ("stopped", "de", "Schrank c1 (gym-nord) ist offline: Agent wurde beendet"),
        ("stopped", "en", "Cabinet c1 (gym-nord) is offline: agent was stopped"),
        # Local time (Berlin, UTC+1 in November), German weekday and date order.
        ("silence", "de",
         "Schrank c1 (gym-nord) ist offline: keine Nachricht seit Mo 02.11.2026, 09:00"),
        ("silence", "en", "Cabinet c1 (gym-nord) is offline: no message since Mon 2 Nov 2026, 09:00"),
    ],
)
def test_summaries_are_german_by_default_and_english_on_request(reason: str, lang: str,
                                                                expected: str) -> None:
    labels = {"alertname": "cabinet_offline", "site": "gym-nord", "cabinet": "c1"}
    annotations = {"reason": reason, "last_seen_at": T0.isoformat()}
    assert alert_summary(labels, annotations, lang) == expected  # type: ignore[arg-type]
    if lang == "de":
        assert alert_summary(labels, annotations) == expected
