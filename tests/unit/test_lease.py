"""The leader lease (server/lease.py) against a model, on SQLite and PostgreSQL: whoever holds it,
when it changes hands and with which term, for any order of tries, releases and clock steps; and
of many collectors trying at once, exactly one wins."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from server.lease import Lease, Tenure
from tests.support.explore import examples
from tests.support.fake_clock import START, FakeClock
from tests.support.store import new_store

pytestmark = pytest.mark.store

LENGTH = timedelta(seconds=15)



@pytest.fixture(scope="module")
def store() -> Iterator[Engine]:
    engine = new_store()
    yield engine
    engine.dispose()


@dataclass
class Model:
    """What the lease must do: one row, taken when free or expired, kept by its holder."""

    holder: str | None = None
    until: datetime = START
    term: int = 0

    def hold(self, who: str, now: datetime) -> Tenure | None:
        if self.holder is None or self.holder == who or self.until <= now:
            if self.holder != who:
                self.term += 1
            self.holder, self.until = who, now + LENGTH
            return Tenure(self.term, self.until)
        return None

    def release(self, who: str, now: datetime) -> None:
        if self.holder == who:
            self.until = now


steps = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["hold", "release"]),
                           st.integers(min_value=0, max_value=20)), min_size=1, max_size=40)


@settings(max_examples=examples(60), deadline=None)
@given(steps)
def test_the_lease_does_what_the_model_says(store: Engine, script: list[tuple[str, str, int]]) -> None:
    clock, model = FakeClock(), Model()
    name = uuid.uuid4().hex[:16]  # a lease of this example's own in the module's store
    leases = {who: Lease(store, name, who, LENGTH, clock) for who in "abc"}
    held: list[tuple[str, datetime, datetime]] = []  # (holder, from, until) as granted
    for who, action, advance in script:
        clock.now += timedelta(seconds=advance)
        if action == "release":
            leases[who].release()
            model.release(who, clock.now)
            held = [(h, f, min(u, clock.now) if h == who else u) for h, f, u in held]
            continue
        tenure = leases[who].hold()
        assert tenure == model.hold(who, clock.now), (who, clock.now - START)
        if tenure is not None:
            held.append((who, clock.now, tenure.until))
    # never two holders at once: each grant to another holder starts after the one before ended
    for (h1, _, u1), (h2, f2, _) in pairwise(held):
        if h1 != h2:
            assert f2 >= u1
    state = leases["a"].holder_now()
    assert (state[0], state[2]) == (model.holder, model.term) if state else model.holder is None


def test_of_many_trying_at_once_one_wins(store: Engine) -> None:
    clock = FakeClock()
    name = uuid.uuid4().hex[:16]
    contenders = [Lease(store, name, f"node-{i}", LENGTH, clock) for i in range(8)]
    start = threading.Barrier(len(contenders))
    won: list[str] = []

    def attempt(lease: Lease) -> None:
        start.wait()
        if lease.hold() is not None:
            won.append(lease.holder)

    threads = [threading.Thread(target=attempt, args=(lease,)) for lease in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert contenders[0].holder_now() == (won[0], START + LENGTH, 1)


def test_a_restarted_collector_takes_its_own_lease_back_at_once(store: Engine) -> None:
    clock = FakeClock()
    name = uuid.uuid4().hex[:16]
    assert Lease(store, name, "alpha", LENGTH, clock).hold() == Tenure(1, START + LENGTH)
    clock.now += timedelta(seconds=1)
    # the same node name after a restart (a new process, a new Lease): same term, later end
    assert Lease(store, name, "alpha", LENGTH, clock).hold() == Tenure(
        1, START + timedelta(seconds=1) + LENGTH)
    assert Lease(store, name, "beta", LENGTH, clock).hold() is None


def test_lease_arguments_are_checked(store: Engine) -> None:
    with pytest.raises(ValueError, match="length"):
        Lease(store, "x", "a", timedelta(0), FakeClock())
    with pytest.raises(ValueError, match="holder"):
        Lease(store, "x", "", LENGTH, FakeClock())


def test_a_holder_whose_clock_runs_ahead_is_named(store: Engine,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    name = uuid.uuid4().hex[:16]
    ahead, ours = FakeClock(), FakeClock()
    ahead.now += timedelta(seconds=30)  # the other machine's clock, 30 s fast
    assert Lease(store, name, "fast", LENGTH, ahead).hold() is not None
    mine = Lease(store, name, "here", LENGTH, ours)
    with caplog.at_level("WARNING", logger="server.lease"):
        assert mine.hold() is None
        assert mine.hold() is None  # said once
    (record,) = caplog.records
    assert "fast's clock is at least 30 s ahead" in record.getMessage()
    # in step (within the tolerance): nothing to say
    caplog.clear()
    with caplog.at_level("WARNING", logger="server.lease"):
        assert Lease(store, name, "other", LENGTH, ahead).hold() is None
    assert caplog.records == []


def test_two_collectors_under_one_node_name_are_told(store: Engine,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    # a copy-pasted config: both think they hold the lease; the renewals give them away
    clock, name = FakeClock(), uuid.uuid4().hex[:16]
    first, second = (Lease(store, name, "collector", LENGTH, clock) for _ in range(2))
    with caplog.at_level("ERROR", logger="server.lease"):
        assert first.hold() is not None
        clock.now += timedelta(seconds=1)
        assert second.hold() is not None  # a new process under the same name: no error yet
        clock.now += timedelta(seconds=1)
        assert first.hold() is not None  # the row ends where the other one put it
    (record,) = caplog.records
    assert "another collector renews it as 'collector' too" in record.getMessage()
    caplog.clear()
    with caplog.at_level("ERROR", logger="server.lease"):  # one renewing alone: nothing to say
        alone = Lease(store, uuid.uuid4().hex[:16], "solo", LENGTH, clock)
        for _ in range(3):
            clock.now += timedelta(seconds=5)
            assert alone.hold() is not None
        alone.release()  # nor after a release and a new start of leading
        assert alone.hold() is not None
    assert caplog.records == []
