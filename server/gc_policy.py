"""Keep Python's cyclic garbage collector from pausing ingest for seconds at fleet scale.

The fleet is millions of small immutable records (a cabinet's slots are replaced with every
telemetry message). CPython's full collection walks every tracked object and runs whenever a
quarter of the heap is new — at 80,000 cabinets × 32 slots that was a pause of seconds every half
minute, holding the GIL against the MQTT thread (bench/fleet_capacity.py, ingest lag p99). Our
records form no reference cycles; refcounting frees them the moment they are replaced, so the
collector only needs to find the rare cycles (exceptions, asyncio internals).

So, every ``freeze_every_s``: collect the young generations (cheap) and ``gc.freeze()`` what
survived — frozen objects are skipped by later collections but still freed by refcounting as
usual. Full collections then only walk what came since the last freeze. A cycle that became
garbage after it was frozen would stay; every ``full_every_s`` everything is unfrozen and
collected once (one longer pause, logged with its duration), so such cycles cannot pile up.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["GcPolicy", "GcStep", "run_gc_policy"]

log = logging.getLogger(__name__)

FREEZE_EVERY_S: Final = 10.0
FULL_EVERY_S: Final = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class GcStep:
    kind: str  # "freeze" or "full"
    took_s: float
    collected: int
    frozen: int  # objects in the permanent generation afterwards


class GcPolicy:
    def __init__(self, freeze_every_s: float = FREEZE_EVERY_S, full_every_s: float = FULL_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < freeze_every_s <= full_every_s:
            raise ValueError("need 0 < freeze_every_s <= full_every_s")
        self.freeze_every_s = freeze_every_s
        self._full_every_s = full_every_s
        self._clock = clock
        self._last_full = clock()

    def step(self) -> GcStep:
        """One turn: a freeze, or — every ``full_every_s`` — a full collection of everything."""
        started = time.perf_counter()
        if self._clock() - self._last_full >= self._full_every_s:
            gc.unfreeze()
            collected = gc.collect()
            self._last_full = self._clock()
            kind = "full"
        else:
            collected = gc.collect(1)
            kind = "freeze"
        gc.freeze()
        step = GcStep(kind, time.perf_counter() - started, collected, gc.get_freeze_count())
        log.log(logging.INFO if kind == "full" else logging.DEBUG,
                "garbage collection (%s): %.3f s, %d collected, %d objects frozen",
                kind, step.took_s, step.collected, step.frozen)
        return step


async def run_gc_policy(policy: GcPolicy) -> None:
    """The collector's task: a step every ``freeze_every_s``, until cancelled; unfreezes at the end."""
    try:
        while True:
            await asyncio.sleep(policy.freeze_every_s)
            policy.step()
    finally:
        gc.unfreeze()
