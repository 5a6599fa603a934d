from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cabinet_agent.outbox import Outbox, Priority

E, S, T = Priority.EVENT, Priority.STATE, Priority.TELEMETRY


def _put(box: Outbox, n: int, priority: Priority, topic: str = "t", size: int = 100) -> list[int]:
    return [box.put(f"{topic}", bytes([65 + i % 26]) * size, qos=1, retain=False, priority=priority,
                    offline=False) for i in range(n)]


def test_items_leave_only_when_acknowledged(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    ids = _put(box, 3, E)
    batch = box.next_batch(10)
    assert [i.id for i in batch] == ids
    assert box.next_batch(10) == []  # all in flight
    box.ack(ids[1])
    assert len(box) == 2
    assert box.release_in_flight() == 2
    assert [i.id for i in box.next_batch(10)] == [ids[0], ids[2]]  # sent again, in order
    assert [i.attempts for i in box.next_batch(10)] == []


def test_a_reopened_outbox_has_everything_unacknowledged(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    ids = _put(box, 5, E)
    box.next_batch(2)
    box.ack(ids[0])
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert [i.id for i in again.next_batch(10)] == ids[1:]
    assert len(again) == 4 and again.size_bytes == 400


def test_a_new_state_supersedes_unsent_older_states(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    _put(box, 3, S, topic="a/state")
    _put(box, 1, S, topic="b/state")
    assert [i.topic for i in box.next_batch(10)] == ["a/state", "b/state"]


def test_when_full_telemetry_goes_first_then_states_then_events(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_bytes=4096)
    events = _put(box, 10, E, size=200)  # 2000 bytes
    _put(box, 1, S, topic="s", size=1000)
    _put(box, 10, T, size=100)  # 1000 bytes -> 4000 total, fits
    assert len(box) == 21
    _put(box, 5, E, size=200)  # 1000 more: all 1000 bytes of telemetry must go
    dropped = box.dropped()
    assert dropped == {"dropped_telemetry": 10}
    assert box.size_bytes <= 4096
    _put(box, 10, E, size=200)  # now the state and telemetry go, then the oldest events
    dropped = box.dropped()
    assert dropped["dropped_telemetry"] == 10 and dropped["dropped_state"] == 1
    remaining = box.next_batch(100)
    assert all(i.priority is E for i in remaining)
    assert remaining[0].id > events[0]  # the oldest events went last of all


def _writer(path: str, ready_fd: int) -> None:
    box = Outbox(path)
    for i in range(100):
        box.put("t", str(i).encode(), qos=1, retain=False, priority=E, offline=True)
    os.write(ready_fd, b"x")
    while True:  # keep writing until killed mid-way
        box.put("t", b"more", qos=1, retain=False, priority=E, offline=True)


def test_sigkill_while_writing_loses_nothing_committed(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_writer, args=(str(tmp_path / "o.db"), write_fd))
    proc.start()
    assert os.read(read_fd, 1) == b"x"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    os.close(read_fd)
    os.close(write_fd)
    box = Outbox(tmp_path / "o.db")
    items = box.next_batch(100_000)
    assert [i.payload for i in items[:100]] == [str(i).encode() for i in range(100)]
    assert all(i.queued_offline for i in items)
    assert len(box) == len(items)


def test_size_limit_must_be_sane(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Outbox(tmp_path / "o.db", max_bytes=10)


_OPS = st.lists(st.one_of(
    st.tuples(st.just("put"), st.sampled_from([E, S, T]), st.sampled_from(["a", "b"]),
              st.integers(1, 600)),
    st.tuples(st.just("batch"), st.integers(0, 4)),
    st.tuples(st.just("ack"), st.integers(0, 40)),
    st.tuples(st.just("release")),
), max_size=80)


@settings(max_examples=300, deadline=None)
@given(_OPS)
def test_a_batch_is_always_the_oldest_items_not_in_flight(ops: list[tuple]) -> None:
    # A reference outbox in a dict, written from the contract (module docstring): whatever mix of
    # puts, supersedes, drops when full, acknowledgements and released connections came before.
    box = Outbox(":memory:", max_bytes=4096)
    rows: dict[int, tuple[Priority, str, int]] = {}
    in_flight: set[int] = set()
    handed: list[int] = []
    for op in ops:
        if op[0] == "put":
            _, priority, topic, size = op
            if priority is S:
                for old in [i for i, r in rows.items() if r[:2] == (S, topic) and i not in in_flight]:
                    del rows[old]
            rows[box.put(topic, b"x" * size, qos=1, retain=False, priority=priority,
                         offline=False)] = (priority, topic, size)
            while sum(r[2] for r in rows.values()) > 4096 and len(rows) > 1:
                dropped = min(rows, key=lambda i: (-rows[i][0], i))
                del rows[dropped]
                in_flight.discard(dropped)
        elif op[0] == "batch":
            expected = sorted(i for i in rows if i not in in_flight)[:op[1]]
            assert [item.id for item in box.next_batch(op[1])] == expected
            in_flight.update(expected)
            handed += expected
        elif op[0] == "ack" and handed:
            item_id = handed[op[1] % len(handed)]
            box.ack(item_id)
            rows.pop(item_id, None)
            in_flight.discard(item_id)
        elif op[0] == "release":
            assert box.release_in_flight() == len(in_flight)
            in_flight.clear()
        assert len(box) == len(rows) and box.in_flight == len(in_flight)
    assert [item.id for item in box.next_batch(1000)] == sorted(set(rows) - in_flight)
