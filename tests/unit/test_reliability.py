"""Delivery guarantees in pieces: the outbox sender, sequence tracking, the event log, the fleet
that never regresses on a replay, and the TSDB journal across a restart while the TSDB is down."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cabinet_agent.common.protocol import (
    AgentStatus,
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    StateMessage,
    StatusMessage,
)
from cabinet_agent.outbox import Outbox, Priority
from cabinet_agent.sender import OutboxSender, mark_replayed
from server.config import TsdbSettings
from server.errors import TsdbError
from server.events import EventLog
from server.fleet import Fleet
from server.integrity import Integrity, SeqRanges
from server.tsdb.influx import InfluxSink
from server.tsdb.spill import Journal
from tests.support.procs import wait_until
from tests.support.store import store_at

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
BOOT_A, BOOT_B = "a" * 32, "b" * 32


# -- agent: the sender -------------------------------------------------------------------------
@dataclass
class _Info:
    rc: int
    mid: int
    published: bool = False

    def is_published(self) -> bool:
        return self.published


class _Link:
    """paho's role: hands out mids; the test acknowledges them."""

    def __init__(self) -> None:
        self.connected = True
        self.sent: list[tuple[int, bytes]] = []
        self._mid = 0
        self.lock = threading.Lock()

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> _Info:
        with self.lock:
            self._mid += 1
            self.sent.append((self._mid, payload))
            return _Info(0, self._mid)


def _payload(n: int) -> bytes:
    return b'{"seq":%d,"replayed":false}' % n


def _sender(outbox: Outbox, link: _Link, window: int = 3) -> OutboxSender:
    return OutboxSender(outbox, link.publish, lambda: link.connected, window=window,
                        replay_rate_per_s=10_000, sync_interval_s=0.5)


def test_the_sender_keeps_a_window_and_deletes_only_on_acknowledgement(tmp_path: Path) -> None:
    outbox, link = Outbox(tmp_path / "o.sqlite"), _Link()
    for n in range(10):
        outbox.put("t", _payload(n), qos=1, retain=False, priority=Priority.EVENT, offline=False)
    sender = _sender(outbox, link)
    sender.start()
    try:
        wait_until(lambda: len(link.sent) == 3, 5, "a full window")
        assert outbox.in_flight == 3 and len(outbox) == 10  # nothing deleted before the PUBACK
        for mid, _ in list(link.sent):
            sender.on_published(mid)
        wait_until(lambda: len(link.sent) == 6, 5, "the next window")
        assert len(outbox) == 7
        # The connection breaks: what was in flight goes again, flagged as a replay.
        link.connected = False
        sender.on_disconnected()
        assert outbox.in_flight == 0
        link.connected = True
        sender.notify()
        wait_until(lambda: len(link.sent) == 9, 5, "a resend after the reconnect")
        assert [p for _, p in link.sent[6:]] == [mark_replayed(_payload(n)) for n in (3, 4, 5)]
        while len(outbox):
            for mid, _ in list(link.sent):
                sender.on_published(mid)
        assert sender.acked == 10
    finally:
        sender.stop()


def test_an_acknowledgement_that_overtakes_publish_is_not_lost(tmp_path: Path) -> None:
    outbox, link = Outbox(tmp_path / "o.sqlite"), _Link()
    outbox.put("t", _payload(1), qos=0, retain=False, priority=Priority.TELEMETRY, offline=False)
    sender = _sender(outbox, link)
    sender.on_published(1)  # paho wrote a QoS 0 message inside publish(): the callback came first
    sender.start()
    try:
        wait_until(lambda: len(outbox) == 0, 5, "the early acknowledgement applied")
    finally:
        sender.stop()


def test_left_overs_of_an_earlier_run_are_sent_as_replays(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "o.sqlite")
    first.put("t", _payload(1), qos=1, retain=False, priority=Priority.EVENT, offline=False)
    first.close()  # the process died before the broker had it
    outbox, link = Outbox(tmp_path / "o.sqlite"), _Link()
    sender = _sender(outbox, link)  # the agent makes it as it opens the outbox
    outbox.put("t", _payload(2), qos=1, retain=False, priority=Priority.EVENT, offline=False)
    sender.start()
    try:
        wait_until(lambda: len(link.sent) == 2, 5, "both sent")
        assert [p for _, p in link.sent] == [mark_replayed(_payload(1)), _payload(2)]
    finally:
        sender.stop()


def test_mark_replayed_touches_only_the_envelope_flag() -> None:
    payload = b'{"detail":"\\"replayed\\":false","replayed":false}'
    assert mark_replayed(payload) == b'{"detail":"\\"replayed\\":false","replayed":true}'


# -- server: sequence numbers, duplicates, clock ---------------------------------------------------
def test_seq_ranges_count_gaps_until_a_replay_fills_them() -> None:
    ranges = SeqRanges()
    for seq in (0, 1, 2, 6, 7, 4):
        assert ranges.add(seq)
    assert ranges.missing == 2  # 3 and 5
    assert not ranges.add(6)  # a duplicate
    assert ranges.add(3) and ranges.add(5)
    assert ranges.missing == 0


def test_seq_ranges_stay_bounded_and_count_what_they_give_up() -> None:
    ranges = SeqRanges(max_ranges=4)
    for seq in range(0, 20, 2):  # a hole after every number
        ranges.add(seq)
    assert ranges.missing == 9


def _status(seq: int, boot: str = BOOT_A, *, ts: datetime = T0, synced: bool = True,
            replayed: bool = False) -> StatusMessage:
    return StatusMessage(v=1, site="gs", cabinet="c1", boot_id=boot, seq=seq, ts=ts,
                         clock_synced=synced, replayed=replayed, status=AgentStatus.ONLINE)


def test_skew_is_flagged_for_synchronised_clocks_and_corrected_for_the_others() -> None:
    integrity = Integrity(skew_bound_s=60)
    fresh, view = integrity.observe(_status(1, ts=T0), T0 + timedelta(minutes=5))
    assert fresh and view.skewed == 1 and view.last_skew_s == -300.0
    # A Pi without RTC that thinks it is 1970: its offset is learned, its backlog keeps its spacing.
    wrong = datetime(1970, 1, 1, tzinfo=UTC)
    integrity.observe(_status(1, BOOT_B, ts=wrong, synced=False), T0)
    backlog = _status(2, BOOT_B, ts=wrong - timedelta(seconds=30), synced=False, replayed=True)
    assert integrity.corrected(backlog, T0 + timedelta(seconds=2)) == T0 - timedelta(seconds=30)
    assert integrity.get("gs", "c1").unsynced == 1


# -- server: the fleet never regresses on a replay -----------------------------------------------
def _state(seq: int, door: DoorState, boot: str = BOOT_A, *, ts: datetime = T0,
           replayed: bool = False) -> StateMessage:
    return StateMessage(v=1, site="gs", cabinet="c1", boot_id=boot, seq=seq, ts=ts, clock_synced=True,
                        replayed=replayed, slots=[], door=door, temperature_c=None,
                        mains=MainsState.ON, devices=[])


def test_an_older_state_of_the_same_boot_does_not_overwrite_a_newer_one() -> None:
    fleet = Fleet()
    fleet.apply(_state(5, DoorState.OPEN), T0)
    view = fleet.apply(_state(3, DoorState.CLOSED, replayed=True), T0)
    assert view.door is DoorState.OPEN and view.stale == 1


def test_a_replay_of_a_replaced_boot_neither_regresses_nor_counts_as_a_boot_change() -> None:
    fleet = Fleet()
    fleet.apply(_state(5, DoorState.OPEN, BOOT_A), T0)
    fleet.apply(_state(0, DoorState.CLOSED, BOOT_B, ts=T0 + timedelta(minutes=1)), T0)
    view = fleet.apply(_state(6, DoorState.OPEN, BOOT_A, replayed=True), T0)
    assert view.boot_id == BOOT_B and view.door is DoorState.CLOSED
    assert len(view.boot_changes) == 1


def test_a_replay_from_a_boot_the_collector_never_saw_live_is_judged_by_its_time() -> None:
    fleet = Fleet()
    fleet.apply(_state(0, DoorState.CLOSED, BOOT_B, ts=T0 + timedelta(minutes=1)), T0)
    view = fleet.apply(_state(9, DoorState.OPEN, BOOT_A, replayed=True), T0)
    assert view.boot_id == BOOT_B and view.door is DoorState.CLOSED


# -- server: the event log ------------------------------------------------------------------------
def _event(seq: int) -> EventMessage:
    return EventMessage(v=1, site="gs", cabinet="c1", boot_id=BOOT_A, seq=seq, ts=T0, clock_synced=True,
                        event=EventKind.DOOR_CHANGED, old="closed", new="open")


def test_the_event_log_stores_each_event_once_across_restarts(tmp_path: Path) -> None:
    log = EventLog(store_at(tmp_path))
    assert log.record(_event(1), T0) and not log.record(_event(1), T0)
    log.close()
    again = EventLog(store_at(tmp_path))
    assert again.seen(_event(1)) and not again.seen(_event(2))
    assert [(e.seq, e.kind, e.ts) for e in again.recent("gs", "c1")] == [(1, "door_changed", T0)]
    again.close()


# -- server: the TSDB journal ----------------------------------------------------------------------
class _Tsdb:
    """A batch writer for InfluxSink: refuses every write while down (retryable), keeps the rest."""

    def __init__(self, up: bool) -> None:
        self.up = up
        self.lines: list[str] = []

    def __call__(self, batch: list[str]) -> None:
        if not self.up:
            raise TsdbError("down")
        self.lines += batch


def _writer(tsdb: _Tsdb, directory: Path, **journal: int) -> InfluxSink:
    return InfluxSink(TsdbSettings(url="http://127.0.0.1:1", flush_interval_s=0.01), tsdb,
                      journal=Journal(directory, **journal), backoff_initial_s=0.01,
                      backoff_max_s=0.02)


def test_lines_survive_a_collector_restart_while_the_tsdb_is_down(tmp_path: Path) -> None:
    down = _writer(_Tsdb(up=False), tmp_path)
    down.write([f"m v={n}i {n}" for n in range(5)])
    assert not down.flush(0.1)
    down.close(0.1)
    tsdb = _Tsdb(up=True)
    back = _writer(tsdb, tmp_path)
    back.write(["m v=5i 5"])
    assert back.flush(5)
    assert tsdb.lines == [f"m v={n}i {n}" for n in range(6)]
    back.close(1)
    third = _Tsdb(up=True)
    _writer(third, tmp_path).close(1)
    assert third.lines == []  # the cursor says everything was written: nothing twice


def test_the_journal_is_bounded_and_counts_what_it_drops(tmp_path: Path) -> None:
    sink = _writer(_Tsdb(up=False), tmp_path, max_bytes=4096, segment_bytes=1024)
    for n in range(600):
        sink.write([f"m,tag=x v={n}i {n}"])
    stats = sink.stats()
    assert stats.dropped > 0 and sum(p.stat().st_size for p in tmp_path.glob("*.lp")) <= 4096 + 1024
    assert stats.buffered == 600 - stats.dropped
    sink.close(0.1)


def test_retained_messages_detect_duplicates_but_open_no_gap() -> None:
    integrity = Integrity()
    integrity.observe(_status(300), T0)
    fresh, view = integrity.observe(_status(150), T0, retained=True)  # an old retained birth
    assert fresh and view.gaps == 0
    fresh, view = integrity.observe(_status(300), T0, retained=True)  # re-sent on re-subscribe
    assert not fresh and view.duplicates == 1
