"""The alert engine: pure logic with an injected clock, no I/O, tested as a timeline.

Each ``tick()`` evaluates every rule. A new finding becomes an active alert (pending until the
rule's pending period has passed, then firing: both derived from its times). A finding that
disappears before the alert fired is forgotten, as in Prometheus; one that disappears after is
resolved (``ends_at`` set) and kept for ``resolved_retention``.

Rules are only evaluated while the collector receives: with its own broker connection down every
cabinet would look silent, so alerts stay as they are until it is back, and silence is then
counted from the reconnect at the earliest. For ``settle`` after the collector starts receiving
(a restart, a reconnect) nothing is resolved: the retained messages that tell the truth about each
cabinet are still arriving, and an alert loaded from the state file must not be resolved by a
fleet that is still empty. Nor is an alert resolved while its cabinet is unknown to the fleet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from server.fleet import CabinetView
from server.org import Organisation
from server.schoolcal import Calendars

from .model import Alert, AlertState
from .rules import Rule, RuleContext
from .store import AlertStore

__all__ = ["AlertEngine"]

log = logging.getLogger(__name__)


class AlertEngine:
    def __init__(
        self,
        rules: Sequence[Rule],
        store: AlertStore,
        fleet: Callable[[], Sequence[CabinetView]],
        clock: Callable[[], datetime],
        resolved_retention: timedelta = timedelta(days=1),
        receiving_since: Callable[[], datetime | None] | None = None,
        org: Organisation | None = None,
        calendars: Calendars | None = None,
        settle: timedelta = timedelta(0),
    ) -> None:
        names = [rule.name for rule in rules]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate rule names: {names}")
        self._rules = list(rules)
        self._store = store
        self._fleet = fleet
        self._clock = clock
        self._retention = resolved_retention
        self._settle = settle
        self._last_tick: datetime | None = None
        self._receiving_since = receiving_since or (lambda: datetime.min.replace(tzinfo=UTC))
        self._org = org or Organisation()
        self._calendars = calendars or Calendars(ZoneInfo(self._org.timezone), self._org.state, [])

    @property
    def store(self) -> AlertStore:
        return self._store

    @property
    def rules(self) -> list[Rule]:
        return list(self._rules)

    def tick(self) -> None:
        now = self._clock()
        receiving_since = self._receiving_since()
        if receiving_since is None:
            return  # not receiving: judge nothing, change nothing
        cabinets = self._fleet()
        ctx = RuleContext(cabinets, now, receiving_since, self._org, self._calendars)
        settled = now - receiving_since >= self._settle
        known = {c.key for c in cabinets}
        for rule in self._rules:
            seen = self._apply(rule, ctx)
            for alert in self._store.active():
                if alert.name != rule.name or alert.fingerprint in seen:
                    continue
                if not settled or alert.cabinet_key not in known:
                    continue  # no data is not "fine": keep it until the cabinet reports
                if alert.state(now) is AlertState.PENDING:
                    self._store.discard_active(alert.fingerprint)
                    log.info("alert %s %s: cleared before firing", rule.name, dict(alert.labels))
                else:
                    extra = _resolution(rule, alert, ctx)
                    self._store.resolve(alert.fingerprint, now, extra)
                    log.info("alert %s %s: resolved %s", rule.name, dict(alert.labels), extra)
        self._log_new_firing(now)
        self._store.purge_resolved(now - self._retention)
        self._last_tick = now

    def _apply(self, rule: Rule, ctx: RuleContext) -> set[str]:
        seen: set[str] = set()
        for finding in rule.evaluate(ctx):
            labels = {"alertname": rule.name, "severity": rule.severity.value, **finding.labels}
            candidate = Alert(labels, finding.annotations, ctx.now, ctx.now + rule.pending)
            seen.add(candidate.fingerprint)
            current = self._store.get_active(candidate.fingerprint)
            if current is None:
                self._store.put_active(candidate)
                log.info("alert %s %s: pending", rule.name, dict(candidate.labels))
            elif current.annotations != candidate.annotations:
                # Same alert, new details (e.g. Last Will after silence): keep its times.
                self._store.put_active(Alert(current.labels, finding.annotations,
                                             current.active_at, current.starts_at))
        return seen

    def _log_new_firing(self, now: datetime) -> None:
        for alert in self._store.active():
            if alert.starts_at <= now and (self._last_tick is None
                                           or alert.starts_at > self._last_tick):
                log.warning("alert %s %s: firing (%s)", alert.name, dict(alert.labels),
                            dict(alert.annotations))


def _resolution(rule: Rule, alert: Alert, ctx: RuleContext) -> Mapping[str, str]:
    """Extra annotations a rule adds when its alert resolves (e.g. why a cabinet was away)."""
    on_resolve = getattr(rule, "on_resolve", None)
    if on_resolve is None:
        return {}
    result: Mapping[str, str] = on_resolve(alert, ctx)
    return result
