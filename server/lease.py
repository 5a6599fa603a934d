"""A lease in the store: which collector does a duty that only one may do at a time.

Several collectors sharing one store (PostgreSQL, issue 19) each try to ``hold`` the lease every
few seconds. Holding it means: the row names this holder and has not expired. A holder renews it
before it expires; any other takes it over once it has expired (a collector killed, frozen or cut
off from the store) — one statement that the database serialises, so two never both win. A clean
stop ``release``s it, so another takes over at its next try instead of after the expiry.

Time is the caller's clock (tested with a fake one). Collectors on several machines compare their
clocks through ``expires_at``: keep them synchronised (NTP) to well within the lease's length;
a clock ahead by *d* takes an expired lease up to *d* early.

``term`` grows with every change of holder: a holder that finds a term other than the one it last
held knows that someone else held the lease in between (its in-memory view of the shared state is
stale).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, bindparam, case, or_, select, update

from .store.base import UtcDateTime, insert_ignore
from .store.schema_cluster import leases

__all__ = ["CLOCK_TOLERANCE", "Lease", "Tenure"]

log = logging.getLogger(__name__)

# A clock this far apart is worth a warning (well within NTP's usual milliseconds it is not).
CLOCK_TOLERANCE = timedelta(seconds=2)
_NOW = bindparam("now", type_=UtcDateTime())
_UNTIL = bindparam("until", type_=UtcDateTime())


@dataclass(frozen=True, slots=True)
class Tenure:
    """The lease as this holder holds it: until ``until`` (by the caller's clock), in ``term``."""

    term: int
    until: datetime


class Lease:
    def __init__(self, store: Engine, name: str, holder: str, length: timedelta,
                 clock: Callable[[], datetime]) -> None:
        if length <= timedelta(0):
            raise ValueError("a lease needs a length > 0")
        if not holder:
            raise ValueError("a lease needs a holder name")
        self._store = store
        self.name = name
        self.holder = holder
        self.length = length
        self._clock = clock
        c = leases.c
        self._claim = (
            update(leases)
            .where(and_(c.name == name, or_(c.holder == holder, c.expires_at <= _NOW)))
            # the old row's holder: the term grows only when the lease changes hands
            .values(holder=holder, expires_at=_UNTIL,
                    term=case((c.holder == holder, c.term), else_=c.term + 1))
        )
        self._read = select(c.holder, c.expires_at, c.term).where(c.name == name)
        self._warned: set[str] = set()
        self._renewed: datetime | None = None  # the end this Lease wrote last, while it held it
        self._twin_said = False
        self.expires: datetime | None = None  # when the lease ends as the last try read it

    def hold(self) -> Tenure | None:
        """Take or renew the lease; the tenure when this holder holds it now, else None."""
        now = self._clock()
        until = now + self.length
        with self._store.begin() as db:
            before = db.execute(self._read).first()
            fresh = db.execute(insert_ignore(db, leases).values(
                name=self.name, holder=self.holder, expires_at=until, term=1))
            if not fresh.rowcount:
                db.execute(self._claim, {"now": now, "until": until})
            row = db.execute(self._read).one()
        self.expires = row.expires_at
        if row.holder != self.holder:
            self._check_clocks(row.holder, row.expires_at, now)
            self._renewed = None
            return None
        if before is not None and before.holder == self.holder and self._renewed is not None \
                and before.expires_at != self._renewed and not self._twin_said:
            # we hold it, and someone renewed it since our last renewal: under our name
            self._twin_said = True
            log.error("lease %r: another collector renews it as %r too: both act as leader; give "
                      "each collector its own [cluster] node", self.name, self.holder)
        self._renewed = until
        return Tenure(int(row.term), until)

    def _check_clocks(self, holder: str, expires_at: datetime, now: datetime) -> None:
        """A lease that ends later than its length from now was renewed by a clock ahead of
        ours: by as much as it takes over early from us, or we from it. Said once per holder."""
        ahead = expires_at - now - self.length
        if ahead > CLOCK_TOLERANCE and holder not in self._warned:
            self._warned.add(holder)
            log.warning("lease %r: %s's clock is at least %.0f s ahead of this one's (%s); keep "
                        "the collectors' clocks synchronised (NTP), or a takeover may come that "
                        "much early or late", self.name, holder, ahead.total_seconds(), self.holder)

    def holder_now(self) -> tuple[str, datetime, int] | None:
        """(holder, expires_at, term) as the store has it, or None before anyone held it."""
        with self._store.connect() as db:
            row = db.execute(self._read).first()
        return None if row is None else (row.holder, row.expires_at, int(row.term))

    def release(self) -> None:
        """Give the lease up now (a clean stop): another collector takes it at its next try."""
        c = leases.c
        self._renewed = None
        with self._store.begin() as db:
            db.execute(update(leases).where(and_(c.name == self.name, c.holder == self.holder))
                       .values(expires_at=self._clock()))

