"""The alert state in the store: the store contract holds, what is written is there after a
restart and to another process, and an installation's old ``ladewache-alerts.sqlite3`` is taken
over once. With LADEWACHE_TEST_STORE=postgresql, on PostgreSQL (tests/support/store.py)."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from server.alerts.model import Alert
from server.alerts.silence import Silence, SilenceKind, Weekly
from server.alerts.state import StoredState
from server.alerts.store import Ack, LogEntry, Outgoing
from server.alerts.takeover import LEGACY_ALERTS_FILE, take_over_alerts
from server.alerts_cli import list_alerts
from server.app import make_state
from server.config import ServerSettings, load_server_settings
from server.errors import ConfigError, ServerError
from tests.support.store import new_store, on_postgres, store_at

pytestmark = pytest.mark.store

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
LABELS = {"alertname": "cabinet_offline", "severity": "critical", "site": "s", "cabinet": "k1"}


@pytest.fixture(params=["cached", "uncached"])
def state(request: pytest.FixtureRequest) -> StoredState:
    """The collector's state (active alerts in memory) and the CLI's (always asks the store)."""
    return StoredState(new_store(), cache=request.param == "cached")


def test_alert_lifecycle_in_the_store(state: StoredState) -> None:
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
    assert state.resolve(alert.fingerprint, NOW + timedelta(hours=2)) is None
    again = Alert(LABELS, {"reason": "lwt"}, NOW + timedelta(hours=2), NOW + timedelta(hours=2))
    state.put_active(again)
    assert state.all() == [resolved, again]  # same fingerprint, two instances
    assert state.purge_resolved(NOW + timedelta(hours=1, seconds=1)) == 1
    assert state.all() == [again]
    with pytest.raises(ValueError):
        state.put_active(resolved)


def test_a_resolved_instance_put_again_is_active_again(state: StoredState) -> None:
    alert = Alert(LABELS, {}, NOW, NOW)
    state.put_active(alert)
    state.resolve(alert.fingerprint, NOW + timedelta(minutes=5))
    state.put_active(alert)  # the same instance (same active_at): one row, active
    assert state.all() == [alert] and state.get_active(alert.fingerprint) == alert


def test_silences_acks_and_the_log(state: StoredState) -> None:
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
    assert {s.id: s for s in state.silences()}[technician.id] == ended
    assert state.expire_silence(technician.id, NOW + timedelta(hours=1)) is None
    assert state.expire_silence("nope", NOW) is None
    future = Silence({"site": "s"}, NOW + timedelta(days=1), NOW + timedelta(days=2), "x", "")
    state.add_silence(future)
    never = state.expire_silence(future.id, NOW)  # not begun: ends at its start, never active
    assert never is not None and never.ends_at == future.starts_at

    ack = Ack("fp", NOW, "Weber", "unterwegs", NOW + timedelta(minutes=1))
    state.acknowledge(ack)
    assert state.acks() == [ack]
    again = Ack("fp", NOW, "Müller", "übernommen", NOW + timedelta(minutes=2))
    state.acknowledge(again)  # the same alert instance: the newer acknowledgement
    assert state.acks() == [again]

    assert state.log_entry("team:it/s/k1/email") is None
    entry = LogEntry(frozenset({"a", "b"}), frozenset({"c"}), NOW)
    state.log_sent("team:it/s/k1/email", entry)
    assert state.log_entry("team:it/s/k1/email") == entry
    later = LogEntry(frozenset(), frozenset({"a", "b", "c"}), NOW + timedelta(hours=1))
    state.log_sent("team:it/s/k1/email", later)
    assert state.log_entry("team:it/s/k1/email") == later


def test_silences_are_listed_by_start_then_in_the_order_added(state: StoredState) -> None:
    ids = [f"{n:016x}" for n in (9, 3, 7)]  # not in the order of their ids
    for n, silence_id in enumerate(ids):
        state.add_silence(Silence({"site": "s"}, NOW, NOW + timedelta(hours=n + 1), "x", "",
                                  id=silence_id))
    earlier = Silence({"site": "t"}, NOW - timedelta(hours=1), NOW, "x", "", id="e" * 16)
    state.add_silence(earlier)
    state.expire_silence(ids[0], NOW + timedelta(minutes=1))  # a change keeps its place
    assert [s.id for s in state.silences()] == [earlier.id, *ids]


def test_everything_is_there_after_a_restart(tmp_path: Path) -> None:
    first = StoredState(store_at(tmp_path))
    alert = Alert(LABELS, {"reason": "lwt"}, NOW, NOW)
    first.put_active(alert)
    first.add_silence(Silence({"site": "s"}, NOW, NOW + timedelta(hours=1), "x", "y"))
    first.log_sent("k", LogEntry(frozenset({alert.fingerprint}), frozenset(), NOW))

    second = StoredState(store_at(tmp_path))  # a new process on the same store
    assert second.active() == [alert]
    assert len(second.silences()) == 1
    assert second.log_entry("k") == LogEntry(frozenset({alert.fingerprint}), frozenset(), NOW)


def _alert(cabinet: str, name: str = "cabinet_offline", site: str = "s",
           at: datetime = NOW) -> Alert:
    return Alert({"alertname": name, "site": site, "cabinet": cabinet}, {}, at, at)


def test_active_alerts_by_cabinet_follow_every_change(state: StoredState) -> None:
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


def test_another_process_sees_every_write_and_a_restart_reads_the_active_alerts(tmp_path: Path) -> None:
    collector = StoredState(store_at(tmp_path))
    k1, k2 = _alert("k1"), _alert("k2")
    collector.put_active(k1)
    reader = StoredState(store_at(tmp_path), cache=False)  # `cabinet-server alerts`
    assert reader.active_for([("s", "k1"), ("s", "k2")]) == [k1]
    collector.put_active(k2)
    collector.resolve(k1.fingerprint, NOW + timedelta(minutes=1))
    assert reader.active_for([("s", "k1"), ("s", "k2")]) == [k2]  # no copy of its own
    assert reader.get_active(k1.fingerprint) is None and reader.get_active(k2.fingerprint) == k2
    again = StoredState(store_at(tmp_path))
    assert again.active_for([("s", "k1"), ("s", "k2")]) == [k2]
    assert again.get_active(k2.fingerprint) == k2 and again.active() == [k2]


def test_purging_keeps_what_ended_later_in_any_order(state: StoredState) -> None:
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


def test_threads_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    """The engine, the notifier and the sender write from their own threads."""
    state = StoredState(store_at(tmp_path))
    start = threading.Barrier(4)
    failed: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait(10)
            for n in range(25):
                state.put_active(_alert(f"k{worker}-{n}"))
                state.log_sent(f"key-{worker}-{n}", LogEntry(frozenset({str(n)}), frozenset(), NOW))
                state.enqueue(Outgoing(f"key-{worker}", "r", "n", str(n),  # news each time
                                       LogEntry(frozenset({str(n)}), frozenset(), NOW), NOW, NOW))
        except BaseException as exc:  # reported below, with the thread's traceback
            failed.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failed == []
    again = StoredState(store_at(tmp_path))
    assert len(again.active()) == 100
    assert all(again.log_entry(f"key-{w}-24") is not None for w in range(4))
    assert sorted((o.log_key, o.message, o.version) for o in again.outgoing()) == [
        (f"key-{w}", "24", 25) for w in range(4)]


# -- an installation from before the store ---------------------------------------------------------

# The schema server/alerts/sqlite.py kept in ladewache-alerts.sqlite3 until issue 18.
LEGACY_SCHEMA = """
CREATE TABLE alerts (fingerprint TEXT NOT NULL, active_at TEXT NOT NULL, starts_at TEXT NOT NULL,
    ends_at TEXT, labels TEXT NOT NULL, annotations TEXT NOT NULL,
    PRIMARY KEY (fingerprint, active_at));
CREATE UNIQUE INDEX alerts_one_active ON alerts (fingerprint) WHERE ends_at IS NULL;
CREATE INDEX alerts_ended ON alerts (ends_at) WHERE ends_at IS NOT NULL;
CREATE TABLE silences (id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL, created_by TEXT NOT NULL, comment TEXT NOT NULL, kind TEXT NOT NULL,
    weekly TEXT, created_at TEXT);
CREATE TABLE acks (fingerprint TEXT NOT NULL, active_at TEXT NOT NULL, by TEXT NOT NULL,
    comment TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (fingerprint, active_at));
CREATE TABLE nflog (key TEXT PRIMARY KEY, firing TEXT NOT NULL, resolved TEXT NOT NULL,
    sent_at TEXT NOT NULL);
CREATE TABLE outbox (log_key TEXT PRIMARY KEY, receiver TEXT NOT NULL, notifier TEXT NOT NULL,
    message TEXT NOT NULL, firing TEXT NOT NULL, resolved TEXT NOT NULL, sent_at TEXT NOT NULL,
    queued_at TEXT NOT NULL, next_at TEXT NOT NULL, attempts INTEGER NOT NULL,
    version INTEGER NOT NULL, error TEXT NOT NULL);
CREATE INDEX outbox_next ON outbox (next_at);
"""

OLD_ACTIVE = Alert(LABELS, {"reason": "lwt"}, NOW, NOW + timedelta(minutes=2))
OLD_RESOLVED = Alert({**LABELS, "cabinet": "k2"}, {"reason": "silence"}, NOW - timedelta(hours=3),
                     NOW - timedelta(hours=3), NOW - timedelta(hours=2))
OLD_SILENCE = Silence({"site": "s"}, NOW, NOW + timedelta(days=30), "Hausmeister", "nachts",
                      weekly=Weekly(frozenset({0, 4}), time(22, 0), time(6, 0)), created_at=NOW,
                      id="0123456789abcdef")
OLD_ACK = Ack(OLD_ACTIVE.fingerprint, NOW, "Weber", "unterwegs", NOW + timedelta(minutes=3))
OLD_ENTRY = LogEntry(frozenset({OLD_ACTIVE.fingerprint}), frozenset({OLD_RESOLVED.fingerprint}),
                     NOW + timedelta(minutes=2))
OLD_OUTGOING = Outgoing("team:it/s/k1/webhook-0", "team:it", "webhook-0", '{"text": "offline"}',
                        OLD_ENTRY, NOW + timedelta(minutes=2), NOW + timedelta(minutes=4), 2, 3,
                        "HTTP 503")


def _write_legacy(directory: Path) -> Path:
    """A state file as the collector before the store left it (its own writes, in WAL mode)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LEGACY_ALERTS_FILE
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(LEGACY_SCHEMA)
    for a in (OLD_ACTIVE, OLD_RESOLVED):
        db.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                   (a.fingerprint, a.active_at.isoformat(), a.starts_at.isoformat(),
                    a.ends_at.isoformat() if a.ends_at else None,
                    _json(a.labels), _json(a.annotations)))
    db.execute("INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (OLD_SILENCE.id, '{"site": "s"}', OLD_SILENCE.starts_at.isoformat(),
                OLD_SILENCE.ends_at.isoformat(), "Hausmeister", "nachts", "silence",
                '{"days": [0, 4], "start": "22:00:00", "end": "06:00:00", "timezone": "Europe/Berlin"}',
                NOW.isoformat()))
    db.execute("INSERT INTO acks VALUES (?, ?, ?, ?, ?)",
               (OLD_ACK.fingerprint, NOW.isoformat(), "Weber", "unterwegs", OLD_ACK.at.isoformat()))
    firing, resolved = f'["{OLD_ACTIVE.fingerprint}"]', f'["{OLD_RESOLVED.fingerprint}"]'
    db.execute("INSERT INTO nflog VALUES (?, ?, ?, ?)",
               ("team:it/s/k1/email", firing, resolved, OLD_ENTRY.sent_at.isoformat()))
    o = OLD_OUTGOING
    db.execute("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (o.log_key, o.receiver, o.notifier, o.message, firing, resolved,
                OLD_ENTRY.sent_at.isoformat(), o.queued_at.isoformat(), o.next_at.isoformat(),
                o.attempts, o.version, o.error))
    db.commit()
    db.close()
    return path


def _json(mapping: Mapping[str, str]) -> str:
    return json.dumps(dict(mapping), sort_keys=True)


def test_an_old_state_file_is_taken_over_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    legacy = _write_legacy(tmp_path)
    caplog.set_level(logging.INFO, logger="server.alerts.takeover")
    state = make_state(store_at(tmp_path), tmp_path)  # what the collector does at start
    assert state.active() == [OLD_ACTIVE]  # its cache holds what was taken over
    assert state.all() == [OLD_RESOLVED, OLD_ACTIVE]
    assert state.silences() == [OLD_SILENCE]
    assert state.acks() == [OLD_ACK]
    assert state.log_entry("team:it/s/k1/email") == OLD_ENTRY
    assert state.outgoing() == [OLD_OUTGOING]
    assert not legacy.exists() and (tmp_path / f"{LEGACY_ALERTS_FILE}.imported").exists()
    assert "took 2 alert(s), 1 silence(s), 1 acknowledgement(s), 1 notification log" in caplog.text

    # The old file stays a database of its own; it is not read again.
    assert take_over_alerts(store_at(tmp_path), tmp_path) == 0
    old = sqlite3.connect(tmp_path / f"{LEGACY_ALERTS_FILE}.imported")
    assert old.execute("SELECT count(*) FROM alerts").fetchone() == (2,)
    old.close()
    assert StoredState(store_at(tmp_path)).all() == [OLD_RESOLVED, OLD_ACTIVE]


def test_a_takeover_cut_short_runs_again_without_doubling(tmp_path: Path) -> None:
    _write_legacy(tmp_path)
    store = store_at(tmp_path)
    assert take_over_alerts(store, tmp_path) == 6
    (tmp_path / f"{LEGACY_ALERTS_FILE}.imported").rename(tmp_path / LEGACY_ALERTS_FILE)  # not renamed
    assert take_over_alerts(store, tmp_path) == 0  # every row was there already
    assert StoredState(store).all() == [OLD_RESOLVED, OLD_ACTIVE]


def test_an_unreadable_old_file_stops_the_start_and_stays(tmp_path: Path) -> None:
    legacy = tmp_path / LEGACY_ALERTS_FILE
    legacy.write_bytes(b"not a database")
    with pytest.raises(ServerError, match="cannot take the alert state over"):
        make_state(store_at(tmp_path), tmp_path)
    assert legacy.exists()


# -- cabinet-server alerts -------------------------------------------------------------------------

def _settings(state_dir: Path) -> ServerSettings:
    """The collector's config (on PostgreSQL, the environment adds the [state] url)."""
    config = state_dir.parent / f"{state_dir.name}.toml"
    config.write_text(f'[state]\ndir = "{state_dir}"\n')
    return load_server_settings(config)


def test_the_cli_lists_what_the_collector_wrote(tmp_path: Path) -> None:
    collector = StoredState(store_at(tmp_path))
    collector.put_active(Alert(LABELS, {"reason": "lwt"}, NOW, NOW))
    out = io.StringIO()
    assert list_alerts(_settings(tmp_path), "en", False, out, now=NOW + timedelta(minutes=1)) == 0
    assert "FIRING" in out.getvalue() and "k1" in out.getvalue()


def test_the_cli_after_an_upgrade_takes_the_old_file_over(tmp_path: Path) -> None:
    _write_legacy(tmp_path / "state")
    out = io.StringIO()
    assert list_alerts(_settings(tmp_path / "state"), "en", True, out, now=NOW) == 0
    assert out.getvalue().count("RESOLVED") == 1 and "Weber" in out.getvalue()
    assert (tmp_path / "state" / f"{LEGACY_ALERTS_FILE}.imported").exists()


@pytest.mark.skipif(on_postgres(), reason="a database URL has no directory to mistype")
def test_the_cli_names_a_state_dir_without_a_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no store yet"):
        list_alerts(_settings(tmp_path / "elsewhere"), "en", False, io.StringIO())
    assert not (tmp_path / "elsewhere").exists()  # nothing created there
