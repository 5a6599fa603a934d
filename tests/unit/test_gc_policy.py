"""The collector's garbage-collection policy: frozen objects are skipped by collections, still
freed by refcounting, and a full step reclaims cycles that were frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from server.gc_policy import GcPolicy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_frozen_cycle_survives_collections_until_the_full_step() -> None:
    clock = FakeClock()
    policy = GcPolicy(freeze_every_s=10, full_every_s=100, clock=clock)
    alive = _cycle()  # garbage already, but only a collection can find it ...
    gc.disable()
    try:
        clock.now = 10
        first = policy.step()  # ... and the young collection before the freeze does
        assert first.kind == "freeze"
        assert alive() is None

        keep = Node()
        keep.other = Node()
        keep.other.other = keep
        ref = weakref.ref(keep)
        clock.now = 20
        assert policy.step().frozen > 0  # the live cycle is frozen now
        del keep  # garbage from here on, but frozen: collections skip it
        gc.collect()
        assert ref() is not None

        clock.now = 100
        full = policy.step()
        assert full.kind == "full"
        assert ref() is None
        assert full.collected >= 2
    finally:
        gc.enable()


def test_frozen_objects_are_still_freed_by_refcounting() -> None:
    policy = GcPolicy(freeze_every_s=1, full_every_s=10, clock=FakeClock())
    record = Node()  # no cycle: like the fleet's records
    ref = weakref.ref(record)
    policy.step()
    del record
    assert ref() is None


def test_intervals_are_checked() -> None:
    with pytest.raises(ValueError, match="freeze_every_s"):
        GcPolicy(freeze_every_s=0)
    with pytest.raises(ValueError, match="freeze_every_s"):
        GcPolicy(freeze_every_s=60, full_every_s=30)
