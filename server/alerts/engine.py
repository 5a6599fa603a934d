"""The alert engine: pure logic with an injected clock, no I/O, tested as a timeline.

Each ``tick()`` evaluates every rule. A new finding becomes an active alert (pending until the
rule's pending period has passed, then firing: both derived from its times). A finding that
disappears before the alert fired is forgotten, as in Prometheus; one that disappears after is
resolved (``ends_at`` set) and kept for ``resolved_retention``.

Rules are only evaluated while the collector receives: with its own broker connection down every
cabinet would look silent, so alerts stay as they are until it is back, and silence is then
counted from the reconnect at the earliest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from server.clock import Clock
from server.fleet import CabinetView

from .model import Alert, AlertState
from .rules import Rule
from .store import AlertStore

__all__ = ["AlertEngine"]

log = logging.getLogger(__name__)


class AlertEngine:
    def __init__(
        self,
        rules: Sequence[Rule],
        store: AlertStore,
        fleet: Callable[[], Sequence[CabinetView]],
        clock: Clock,
        resolved_retention: timedelta = timedelta(days=1),
        receiving_since: Callable[[], datetime | None] | None = None,
    ) -> None:
        names = [rule.name for rule in rules]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate rule names: {names}")
        self._rules = list(rules)
        self._store = store
        self._fleet = fleet
        self._clock = clock
        self._retention = resolved_retention
        self._last_tick: datetime | None = None
        self._receiving_since = receiving_since or (lambda: datetime.min.replace(tzinfo=UTC))

    @property
    def store(self) -> AlertStore:
        return self._store

    def tick(self) -> None:
        now = self._clock()
        receiving_since = self._receiving_since()
        if receiving_since is None:
            return  # not receiving: judge nothing, change nothing
        cabinets = self._fleet()
        for rule in self._rules:
            seen: set[str] = set()
            for finding in rule.evaluate(cabinets, now, receiving_since):
                candidate = Alert(finding.labels, finding.annotations, now, now + rule.pending)
                seen.add(candidate.fingerprint)
                current = self._store.get_active(candidate.fingerprint)
                if current is None:
                    self._store.put_active(candidate)
                    log.info("alert %s %s: pending", rule.name, dict(candidate.labels))
                elif current.annotations != candidate.annotations:
                    # Same alert, new details (e.g. Last Will after silence): keep its times.
                    self._store.put_active(Alert(current.labels, finding.annotations,
                                                 current.active_at, current.starts_at))
            for alert in self._store.active():
                if alert.name != rule.name or alert.fingerprint in seen:
                    continue
                if alert.state(now) is AlertState.PENDING:
                    self._store.discard_active(alert.fingerprint)
                    log.info("alert %s %s: cleared before firing", rule.name, dict(alert.labels))
                else:
                    self._store.resolve(alert.fingerprint, now)
                    log.info("alert %s %s: resolved", rule.name, dict(alert.labels))
        self._log_new_firing(now)
        self._store.purge_resolved(now - self._retention)
        self._last_tick = now

    def _log_new_firing(self, now: datetime) -> None:
        for alert in self._store.active():
            if alert.starts_at <= now and (self._last_tick is None
                                           or alert.starts_at > self._last_tick):
                log.warning("alert %s %s: firing (%s)", alert.name, dict(alert.labels),
                            dict(alert.annotations))
