"""A leader that hears no broker hands the lead to a collector that does (server/leader.py,
server/hearing.py), with a fake clock on a real store: when it steps down, that a deaf collector
does not take the lead back, that nothing changes while every collector is deaf, and — for any
order of steps, clock moves and broker losses — that two never act at once and that in the end
a hearing collector leads whenever one hears."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete

from server.hearing import Hearing
from server.leader import LEASE_NAME, Leadership
from server.lease import Lease
from server.store.schema_cluster import hearing, leases
from tests.support.explore import examples
from tests.support.fake_clock import START, FakeClock
from tests.support.store import new_store

pytestmark = pytest.mark.store

LENGTH = timedelta(seconds=15)
HAND_OVER_AFTER = timedelta(seconds=30)



class Node:
    """One collector: its leadership, whether it receives from a broker, what it was told."""

    def __init__(self, store, name: str, clock: FakeClock,  # type: ignore[no-untyped-def]
                 runner: asyncio.Runner | None = None) -> None:
        self.runner = runner
        self.name = name
        self.clock = clock
        self.events: list[str] = []
        self.silent_since: datetime | None = None
        self.leadership = Leadership(
            Lease(store, LEASE_NAME, name, LENGTH, clock), clock,
            on_gain=lambda: self.events.append("gain"),
            on_loss=lambda: self.events.append("loss"),
            hearing=Hearing(store, name, LENGTH, clock),
            silent_since=lambda: self.silent_since, hand_over_after=HAND_OVER_AFTER)

    def hears(self, hears: bool) -> None:
        if hears:
            self.silent_since = None
        elif self.silent_since is None:
            self.silent_since = self.clock()

    def step(self) -> None:
        if self.runner is None:
            asyncio.run(self.leadership.step())
        else:  # one loop and one thread pool for many steps
            self.runner.run(self.leadership.step())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def shared() -> Iterator[Engine]:
    engine = new_store()
    yield engine
    engine.dispose()


def _emptied(engine: Engine) -> Engine:
    with engine.begin() as db:
        db.execute(delete(leases))
        db.execute(delete(hearing))
    return engine


@pytest.fixture
def store(shared: Engine) -> Engine:
    return _emptied(shared)


def _rounds(clock: FakeClock, nodes: list[Node], duration: timedelta) -> None:
    """Every node tries on its rhythm for ``duration``."""
    end = clock.now + duration
    while clock.now < end:
        for node in nodes:
            node.step()
        clock.now += LENGTH / 3


def test_a_deaf_leader_steps_down_for_a_collector_that_hears(clock: FakeClock, store: Engine) -> None:
    a, b = Node(store, "a", clock), Node(store, "b", clock)
    a.step()
    b.step()
    assert (a.leadership.leading, b.leadership.leading) == (True, False)

    a.hears(False)  # the leader's broker connection is gone; the store is still there
    _rounds(clock, [a, b], HAND_OVER_AFTER - LENGTH / 3)
    assert a.leadership.leading and a.events == ["gain"]  # a short loss changes nothing

    clock.now = START + HAND_OVER_AFTER
    a.step()  # heard nothing for hand_over_after while b hears: a steps down and frees the lease
    assert not a.leadership.leading and a.events == ["gain", "loss"]
    b.step()  # at b's next try, not after the lease's length
    assert b.leadership.leading and b.events == ["gain"] and b.leadership.term == 2

    _rounds(clock, [a, b], LENGTH * 3)  # deaf a does not take the lead back
    assert (a.leadership.leading, b.leadership.leading) == (False, True)
    a.hears(True)  # and once it hears again, b keeps it: no handing back and forth
    _rounds(clock, [a, b], LENGTH * 3)
    assert (a.events, b.events) == (["gain", "loss"], ["gain"])


def test_while_every_collector_is_deaf_the_leader_stays(clock: FakeClock, store: Engine) -> None:
    a, b = Node(store, "a", clock), Node(store, "b", clock)
    a.step()
    b.step()
    a.hears(False)
    b.hears(False)  # the broker is down for both: handing over would change nothing
    _rounds(clock, [a, b], HAND_OVER_AFTER * 4)
    assert (a.events, b.events) == (["gain"], [])
    assert a.leadership.leading


def test_a_collector_that_hears_is_preferred_when_the_leader_dies(clock: FakeClock, store: Engine) -> None:
    """The leader is gone; of the two left, the deaf one leaves the lead to the one that hears."""
    a, b, c = (Node(store, name, clock) for name in "abc")
    for node in (a, b, c):
        node.step()
    assert a.leadership.leading
    b.hears(False)  # for a moment only: it would not make a leader step down yet
    # a dies; b tries first every round, but takes no lead while c hears
    _rounds(clock, [b, c], LENGTH * 2)
    assert c.leadership.leading and (b.events, c.events) == ([], ["gain"])


def test_a_deaf_collector_takes_the_lead_when_no_one_hears_any_more(clock: FakeClock, store: Engine) -> None:
    """The one that heard died: its word counts only for the length of a lease."""
    a, b = Node(store, "a", clock), Node(store, "b", clock)
    a.step()
    b.step()
    a.hears(False)
    while a.leadership.leading:  # b tries before a in every round
        clock.now += LENGTH / 3
        b.step()
        a.step()
    assert a.events == ["gain", "loss"]  # a stepped down for b ...
    # ... which dies before its next try
    _rounds(clock, [a], LENGTH + LENGTH / 3)
    assert a.leadership.leading and a.events == ["gain", "loss", "gain"]


def test_hearing_counts_for_its_length_and_names_the_others(clock: FakeClock, store: Engine) -> None:
    a, b, c = (Hearing(store, name, LENGTH, clock) for name in "abc")
    assert a.report(True) == []
    assert b.report(True) == ["a"]
    assert c.report(False) == ["a", "b"]
    assert a.report(False) == ["b"]  # a says it hears no more: at once, not after its length
    clock.now += LENGTH
    assert c.report(True) == []  # b's word has run out
    with pytest.raises(ValueError):
        Hearing(store, "d", timedelta(0), clock)


_actions = st.lists(st.one_of(
    st.tuples(st.just("step"), st.sampled_from("abc")),
    st.tuples(st.just("hears"), st.sampled_from("abc"), st.booleans()),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=40)),
), min_size=1, max_size=40)


@settings(max_examples=examples(20), deadline=None)
@given(_actions, st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_never_two_leaders_and_in_the_end_one_that_hears(
        shared: Engine, actions: list[tuple[object, ...]],
        finally_hears: tuple[bool, bool, bool]) -> None:
    with asyncio.Runner() as runner:
        _never_two_leaders(_emptied(shared), actions, finally_hears, runner)


def _never_two_leaders(store: Engine, actions: list[tuple[object, ...]],
                       finally_hears: tuple[bool, bool, bool], runner: asyncio.Runner) -> None:
    clock = FakeClock()
    nodes = {name: Node(store, name, clock, runner) for name in "abc"}

    def check() -> None:
        leading = [n.name for n in nodes.values() if n.leadership.leading]
        assert len(leading) <= 1, leading

    for action in actions:
        if action[0] == "step":
            nodes[str(action[1])].step()
        elif action[0] == "hears":
            nodes[str(action[1])].hears(bool(action[2]))
        else:
            clock.now += timedelta(seconds=int(str(action[1])))
        check()

    for node, hears in zip(nodes.values(), finally_hears, strict=True):
        node.hears(hears)
    end = clock.now + HAND_OVER_AFTER + LENGTH * 3
    while clock.now < end:
        for node in nodes.values():
            node.step()
            check()
        clock.now += LENGTH / 3
    leading = [n for n in nodes.values() if n.leadership.leading]
    assert len(leading) == 1
    if any(finally_hears):
        assert leading[0].silent_since is None, leading[0].name


def test_a_restarted_leader_takes_its_lease_back_while_it_connects(clock: FakeClock,
                                                                   store: Engine) -> None:
    """Started again under its name (systemd after a crash) before its lease ran out: it has not
    subscribed yet, but may take its lease back; it steps down only if it stays deaf."""
    a, b = Node(store, "a", clock), Node(store, "b", clock)
    a.step()
    b.step()
    restarted = Node(store, "a", clock)
    restarted.hears(False)  # connecting
    clock.now += timedelta(seconds=1)
    restarted.step()
    assert restarted.leadership.leading and restarted.leadership.term == 1
    restarted.hears(True)
    _rounds(clock, [restarted, b], LENGTH * 3)
    assert restarted.events == ["gain"] and b.events == []
