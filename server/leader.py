"""Which collector leads: evaluates the alert rules, sends the notifications and writes the
history, when several collectors share one store (issue 19; docs/reliability.md).

Every collector receives every cabinet and keeps the whole fleet (it serves the dashboard and the
API); only the holder of the lease ``leader`` (``server/lease.py``) acts on what it sees. Each
collector tries to hold the lease every ``lease_s / 3``, and a follower also at the moment the
lease it read ends. The leader stops acting as soon as its tenure ends by its own clock, renewed
or not, so two never act at once as long as the clocks agree to well within the lease; a follower
takes over when the lease has expired: within ``lease_s`` of the leader's last renewal (plus a
store round trip), so within ``lease_s`` of a leader's death.

A leader that hears no broker judges no cabinet (and one that hears only some of its brokers
misses the cabinets at the others). When it has not heard all its brokers for ``hand_over_after``
while another collector does (``server/hearing.py``), it steps down and gives the lease up, and a
collector that hears takes it at its next try; a follower that has missed a broker for a round of
tries takes no lease while another collector hears all of its. When no collector hears all (a
broker is down), the leader stays.

``on_gain`` runs when this collector starts to lead (the first time, after a gap, or when another
held the lease in between: a new term), ``on_loss`` when it stops; both on the event loop, between
ticks, so the duties never see a half-changed state. A single collector with SQLite takes the
lease at its first try and keeps it: nothing changes for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.exc import SQLAlchemyError

from .hearing import Hearing
from .lease import Lease, Tenure

__all__ = ["LEASE_NAME", "Leadership"]

log = logging.getLogger(__name__)

LEASE_NAME: Final = "leader"
# A follower tries this long after the lease's end, so that the end has passed in the store too.
_AFTER_EXPIRY_S: Final = 0.05


class Leadership:
    def __init__(self, lease: Lease, clock: Callable[[], datetime], *,
                 on_gain: Callable[[], None], on_loss: Callable[[], None],
                 hearing: Hearing | None = None,
                 silent_since: Callable[[], datetime | None] = lambda: None,
                 hand_over_after: timedelta | None = None) -> None:
        """``silent_since``: since when this collector misses a broker (None: it receives from
        every one);
        ``hand_over_after``: how long a leader hears nothing before it steps down for a
        collector that hears (None: never)."""
        self._lease = lease
        self._clock = clock
        self._on_gain = on_gain
        self._on_loss = on_loss
        self._hearing = hearing
        self._silent_since = silent_since
        self._hand_over_after = hand_over_after
        self._tenure: Tenure | None = None
        self._acting: Tenure | None = None  # the tenure on_gain was called for, until on_loss
        self.every = lease.length / 3
        self.gained = 0  # how often this collector started to lead

    @property
    def node(self) -> str:
        return self._lease.holder

    @property
    def leading(self) -> bool:
        """Whether this collector may act now: it holds a tenure that has not ended, and its
        duties were started for it."""
        tenure = self._acting
        return tenure is not None and self._clock() < tenure.until

    @property
    def term(self) -> int | None:
        return self._acting.term if self._acting is not None else None

    def _try(self) -> Tenure | None:
        """Take or renew the lease (blocking: a thread); on a store error keep what is held."""
        try:
            return self._lease.hold()
        except SQLAlchemyError as exc:
            log.warning("leader lease %r: store unreachable (%s); leading until %s at most",
                        self._lease.name, type(exc).__name__,
                        self._tenure.until.isoformat() if self._tenure else "-")
            return self._tenure

    def settle(self, tenure: Tenure | None) -> None:
        """Act on the outcome of a try (on the loop): start or stop leading."""
        self._tenure = tenure
        now = self._clock()
        valid = tenure is not None and now < tenure.until
        acting = self._acting
        if acting is not None and (not valid or tenure is None or tenure.term != acting.term
                                   or now >= acting.until):
            self._acting = None
            log.warning("%s stops leading (term %d)", self.node, acting.term)
            self._on_loss()
            acting = None
        if valid and tenure is not None:
            if acting is None:
                self._acting = tenure
                self.gained += 1
                log.info("%s leads now (term %d, lease %g s)", self.node, tenure.term,
                         self._lease.length.total_seconds())
                self._on_gain()
            else:
                self._acting = tenure  # renewed: the same term, a later end

    def _others_hearing(self) -> list[str]:
        """Say in the store whether this collector hears; who else does (blocking: a thread).
        On a store error nobody: the lease try says what the store outage means."""
        if self._hearing is None:
            return []
        try:
            return self._hearing.report(self._silent_since() is None)
        except SQLAlchemyError:
            return []

    def _gives_way(self) -> datetime | None:
        """Since when this collector has missed a broker, if it is to leave the lead to one that
        hears: a leader once that is ``hand_over_after`` ago (a short loss changes nothing), a
        follower once it is one round of tries ago (it takes no lead it could not use; a
        collector that has just started and is still connecting may take its lease back)."""
        since = self._silent_since()
        if since is None or self._hand_over_after is None:
            return None
        wait = self._hand_over_after if self._acting is not None else \
            min(self._hand_over_after, self.every)
        return since if self._clock() - since >= wait else None

    async def step(self) -> None:
        others = await asyncio.to_thread(self._others_hearing)
        deaf_since = self._gives_way()
        if others and deaf_since is not None:
            await self._step_aside(others, deaf_since)
            return
        self.settle(await asyncio.to_thread(self._try))

    async def _step_aside(self, others: list[str], deaf_since: datetime) -> None:
        """Deaf while others hear: stop acting, give the lease up, and do not take it."""
        tenure, self._tenure = self._tenure, None
        acting, self._acting = self._acting, None
        if acting is not None:
            log.warning("%s hands the lead over (term %d): it has not received from every "
                        "broker since %s, and %s does", self.node, acting.term, deaf_since.isoformat(),
                        ", ".join(others))
            self._on_loss()
        if tenure is not None and self._clock() < tenure.until:
            try:
                await asyncio.to_thread(self._lease.release)
            except SQLAlchemyError as exc:
                log.warning("leader lease not released (%s): another collector takes over when "
                            "it expires", type(exc).__name__)

    def next_try_in(self) -> float:
        """Seconds until the next try: ``every``, or sooner when another's lease ends sooner."""
        every = self.every.total_seconds()
        expires = self._lease.expires
        if self.leading or expires is None:
            return every
        left = (expires - self._clock()).total_seconds()
        if left <= 0:  # read before a failed try: nothing to wait for but the next round
            return every
        return min(every, left + _AFTER_EXPIRY_S)

    async def run(self) -> None:
        """Hold the lease for as long as the collector runs."""
        while True:
            try:
                await self.step()
            except Exception:  # top of a task: leading must not end for good on one bug
                log.exception("leader lease failed")
                await asyncio.sleep(self.every.total_seconds())
                continue
            await asyncio.sleep(self.next_try_in())

    def release(self) -> None:
        """A clean stop: stop acting and give the lease to the next collector's first try."""
        if self._acting is not None:
            self._acting = None
            self._on_loss()
        try:
            self._lease.release()
        except SQLAlchemyError as exc:
            log.warning("leader lease not released (%s): another collector takes over when it "
                        "expires", type(exc).__name__)
