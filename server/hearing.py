"""Which collectors hear the broker: so a leader that hears nothing can hand the lead to one that
does (issue 19; ``server/leader.py``).

A leader cut off from the broker but not from the store keeps renewing its lease, yet judges no
cabinet: it receives nothing (nor from the cabinets at a broker it lost, with ``[mqtt] failover``).
Every collector therefore says in the store, at each of its lease tries, whether it receives from
every broker of its config now: a row per collector that counts until ``length``
after the try (a collector that dies stops counting by itself). A leader that has heard nothing for
a while asks who else hears, and steps down only for one that does — when no collector hears all
(a broker is down), the leader stays: handing over would change nothing but the leader.

Time is the caller's clock, as for the lease (``server/lease.py``): keep the clocks synchronised.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, select

from .store.base import upsert
from .store.schema_cluster import hearing

__all__ = ["Hearing"]


class Hearing:
    def __init__(self, store: Engine, node: str, length: timedelta,
                 clock: Callable[[], datetime]) -> None:
        if length <= timedelta(0):
            raise ValueError("hearing needs a length > 0")
        self._store = store
        self.node = node
        self.length = length
        self._clock = clock

    def report(self, hears: bool) -> list[str]:
        """Say whether this collector receives now; the other collectors that do, by name."""
        now = self._clock()
        until = now + self.length if hears else now
        c = hearing.c
        with self._store.begin() as db:
            db.execute(upsert(db, hearing, ["node"], {"node": self.node, "until": until}))
            rows = db.execute(select(c.node).where(and_(c.node != self.node, c.until > now))
                              .order_by(c.node))
            return [str(node) for node in rows.scalars()]

    def hearing_now(self) -> dict[str, datetime]:
        """Every collector whose word that it hears still counts, with until when."""
        c = hearing.c
        with self._store.connect() as db:
            rows = db.execute(select(c.node, c.until).where(c.until > self._clock()))
            return {str(row.node): row.until for row in rows}

    def forget(self) -> None:
        """This collector is gone for good: its row goes."""
        with self._store.begin() as db:
            db.execute(delete(hearing).where(hearing.c.node == self.node))
