"""Leadership (server/leader.py) with a fake clock on a real store: who acts, when a leader
stops acting by its own clock, when a follower takes over, and what a store outage does."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from server.leader import LEASE_NAME, Leadership
from server.lease import Lease
from server.store import open_store
from tests.support.fake_clock import FakeClock

LENGTH = timedelta(seconds=15)



class Node:
    """One collector's leadership, recording what it was told."""

    def __init__(self, store, name: str, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
        self.events: list[str] = []
        self.leadership = Leadership(Lease(store, LEASE_NAME, name, LENGTH, clock), clock,
                                     on_gain=lambda: self.events.append("gain"),
                                     on_loss=lambda: self.events.append("loss"))

    def step(self) -> None:
        asyncio.run(self.leadership.step())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_one_leads_the_other_takes_over_once_the_lease_has_expired(clock: FakeClock) -> None:
    store = open_store(None)
    a, b = Node(store, "a", clock), Node(store, "b", clock)
    a.step()
    b.step()
    assert (a.leadership.leading, b.leadership.leading) == (True, False)
    assert (a.events, b.events) == (["gain"], [])
    assert a.leadership.every == LENGTH / 3

    clock.now += a.leadership.every  # renewed in time: still the same term, no second gain
    a.step()
    b.step()
    assert a.events == ["gain"] and a.leadership.term == 1 and not b.leadership.leading

    # a stops renewing (frozen, killed): by its own clock it stops acting when its tenure ends,
    # before anyone else can take the lease
    clock.now += LENGTH
    assert not a.leadership.leading
    b.step()
    assert b.leadership.leading and b.leadership.term == 2 and b.events == ["gain"]
    a.step()  # a wakes up: it holds nothing any more and says so
    assert a.events == ["gain", "loss"] and not a.leadership.leading


def test_a_clean_stop_hands_over_at_the_next_try(clock: FakeClock) -> None:
    store = open_store(None)
    a, b = Node(store, "a", clock), Node(store, "b", clock)
    a.step()
    a.leadership.release()
    assert a.events == ["gain", "loss"] and not a.leadership.leading
    b.step()  # at once, not after the lease's length
    assert b.leadership.leading


def test_a_store_outage_keeps_the_leader_until_its_tenure_ends(clock: FakeClock) -> None:
    store = open_store(None)
    a = Node(store, "a", clock)
    a.step()
    with store.begin() as db:
        db.execute(text("DROP TABLE leases"))  # every try now fails in the store
    clock.now += LENGTH / 2
    a.step()
    assert a.leadership.leading and a.events == ["gain"]  # the tenure it holds still counts
    clock.now += LENGTH / 2
    a.step()
    assert not a.leadership.leading and a.events == ["gain", "loss"]


def test_a_follower_tries_again_when_the_lease_it_read_ends(clock: FakeClock) -> None:
    """So a dead leader is replaced within the lease's length, not a third of it later."""
    store = open_store(None)
    a, b = Node(store, "a", clock), Node(store, "b", clock)
    every = a.leadership.every.total_seconds()
    a.step()
    assert a.leadership.next_try_in() == every  # the leader renews on its rhythm
    b.step()
    assert b.leadership.next_try_in() == every  # the lease ends in 15 s, later than 5 s
    clock.now += LENGTH - timedelta(seconds=2)  # a died right after its renewal
    b.step()
    wait = b.leadership.next_try_in()
    assert 2.0 < wait < 2.2
    clock.now += timedelta(seconds=wait)
    b.step()
    assert b.leadership.leading  # at the lease's end, not at the next round of 5 s


def test_a_failed_try_does_not_make_a_follower_try_in_a_tight_loop(clock: FakeClock) -> None:
    store = open_store(None)
    a, b = Node(store, "a", clock), Node(store, "b", clock)
    a.step()
    b.step()
    with store.begin() as db:
        db.execute(text("DROP TABLE leases"))  # every try now fails in the store
    clock.now += LENGTH * 2  # what b read has long ended
    b.step()
    assert not b.leadership.leading
    assert b.leadership.next_try_in() == b.leadership.every.total_seconds()
