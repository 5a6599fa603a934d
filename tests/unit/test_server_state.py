"""The SQLite alert state: what is written is there after a reopen, and the store contract holds."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from server.alerts.model import Alert
from server.alerts.silence import Silence, SilenceKind, Weekly
from server.alerts.sqlite import SqliteState
from server.alerts.store import Ack, LogEntry, MemoryState
from server.errors import ServerError

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
LABELS = {"alertname": "cabinet_offline", "severity": "critical", "site": "s", "cabinet": "k1"}


@pytest.fixture(params=["sqlite", "memory"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> SqliteState | MemoryState:
    if request.param == "memory":
        return MemoryState()
    return SqliteState(tmp_path / "state" / "alerts.sqlite3")


def test_alert_lifecycle_in_the_store(state: SqliteState | MemoryState) -> None:
    alert = Alert(LABELS, {"reason": "lwt"}, NOW, NOW + timedelta(seconds=60))
    state.put_active(alert)
    assert state.get_active(alert.fingerprint) == alert
    updated = Alert(LABELS, {"reason": "silence"}, NOW, NOW + timedelta(seconds=60))
    state.put_active(updated)
    assert state.active() == [updated]
    resolved = state.resolve(alert.fingerprint, NOW + timedelta(hours=1), {"return_cause": "power_loss"})
    assert resolved is not None and resolved.annotations == {"reason": "silence",
                                                             "return_cause": "power_loss"}
    assert state.active() == [] and state.all() == [resolved]
    again = Alert(LABELS, {"reason": "lwt"}, NOW + timedelta(hours=2), NOW + timedelta(hours=2))
    state.put_active(again)
    assert state.all() == [resolved, again]  # same fingerprint, two instances
    assert state.purge_resolved(NOW + timedelta(hours=1, seconds=1)) == 1
    assert state.all() == [again]
    with pytest.raises(ValueError):
        state.put_active(resolved)


def test_silences_acks_and_the_log(state: SqliteState | MemoryState) -> None:
    weekly = Weekly(frozenset({0, 2}), time(22, 0), time(6, 0), "Europe/Berlin")
    recurring = Silence({"site": "s"}, NOW, NOW + timedelta(days=30), "Hausmeister", "nachts",
                        weekly=weekly, created_at=NOW)
    technician = Silence({"site": "s", "cabinet": "k1"}, NOW, NOW + timedelta(hours=2), "Maier",
                         "Netzteil", SilenceKind.TECHNICIAN, created_at=NOW)
    state.add_silence(recurring)
    state.add_silence(technician)
    assert {s.id: s for s in state.silences()} == {recurring.id: recurring,
                                                  technician.id: technician}
    ended = state.expire_silence(technician.id, NOW + timedelta(minutes=30))
    assert ended is not None and ended.ends_at == NOW + timedelta(minutes=30)
    assert state.expire_silence(technician.id, NOW + timedelta(hours=1)) is None

    ack = Ack("fp", NOW, "Weber", "unterwegs", NOW + timedelta(minutes=1))
    state.acknowledge(ack)
    assert state.acks() == [ack]

    assert state.log_entry("team:it/s/k1/email") is None
    entry = LogEntry(frozenset({"a", "b"}), frozenset({"c"}), NOW)
    state.log_sent("team:it/s/k1/email", entry)
    assert state.log_entry("team:it/s/k1/email") == entry


def test_everything_is_there_after_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite3"
    first = SqliteState(path)
    alert = Alert(LABELS, {"reason": "lwt"}, NOW, NOW)
    first.put_active(alert)
    first.add_silence(Silence({"site": "s"}, NOW, NOW + timedelta(hours=1), "x", "y"))
    first.log_sent("k", LogEntry(frozenset({alert.fingerprint}), frozenset(), NOW))
    first.close()

    second = SqliteState(path)
    assert second.active() == [alert]
    assert len(second.silences()) == 1
    assert second.log_entry("k") == LogEntry(frozenset({alert.fingerprint}), frozenset(), NOW)
    reader = SqliteState(path, read_only=True)  # what `cabinet-server alerts` opens
    assert reader.active() == [alert]
    assert second.db_mode() == "wal"


def test_an_unusable_state_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ServerError, match="cannot open alert state"):
        SqliteState(blocker / "alerts.sqlite3")


def _alert(cabinet: str, name: str = "cabinet_offline", site: str = "s",
           at: datetime = NOW) -> Alert:
    return Alert({"alertname": name, "site": site, "cabinet": cabinet}, {}, at, at)


def test_active_alerts_by_cabinet_follow_every_change(state: SqliteState | MemoryState) -> None:
    k1, k1_door, k2 = _alert("k1"), _alert("k1", "door_open"), _alert("k2")
    other_site = _alert("k1", site="t")
    for alert in (k1, k1_door, k2, other_site):
        state.put_active(alert)
    assert sorted(a.name for a in state.active_for([("s", "k1")])) == ["cabinet_offline", "door_open"]
    assert state.active_for([("s", "k2"), ("s", "nope")]) == [k2]
    assert state.active_for([]) == []
    updated = Alert(k1.labels, {"reason": "lwt"}, k1.active_at, k1.starts_at)
    state.put_active(updated)  # same fingerprint, new annotations: replaced, not added
    assert sorted((a.name, dict(a.annotations)) for a in state.active_for([("s", "k1")])) == [
        ("cabinet_offline", {"reason": "lwt"}), ("door_open", {})]
    state.resolve(k1.fingerprint, NOW + timedelta(minutes=1))
    state.discard_active(k1_door.fingerprint)
    assert state.active_for([("s", "k1")]) == []
    assert state.get_active(k1.fingerprint) is None
    assert state.active_for([("t", "k1")]) == [other_site]
    assert len(state.all()) == 3  # k1 resolved, k2, t/k1


def test_the_sqlite_index_of_active_alerts_is_the_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite3"
    first = SqliteState(path)
    k1, k2 = _alert("k1"), _alert("k2")
    first.put_active(k1)
    first.put_active(k2)
    first.resolve(k2.fingerprint, NOW + timedelta(minutes=1))
    reader = SqliteState(path, read_only=True)  # another process: asks the file every time
    assert reader.active_for([("s", "k1"), ("s", "k2")]) == [k1]
    first.close()
    again = SqliteState(path)
    assert again.active_for([("s", "k1"), ("s", "k2")]) == [k1]
    assert again.get_active(k1.fingerprint) == k1 and again.active() == [k1]


def test_purging_keeps_what_ended_later_in_any_order(state: SqliteState | MemoryState) -> None:
    late, early = _alert("k1"), _alert("k2")
    state.put_active(late)
    state.put_active(early)
    state.resolve(late.fingerprint, NOW + timedelta(hours=2))
    state.resolve(early.fingerprint, NOW + timedelta(hours=1))  # ended earlier, resolved later
    assert state.purge_resolved(NOW + timedelta(minutes=30)) == 0
    assert state.purge_resolved(NOW + timedelta(hours=1, minutes=30)) == 1
    assert [a.labels["cabinet"] for a in state.all()] == ["k1"]
    assert state.purge_resolved(NOW + timedelta(hours=1, minutes=30)) == 0
    assert state.purge_resolved(NOW + timedelta(hours=3)) == 1
    assert state.all() == []
