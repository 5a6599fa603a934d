"""The alert engine: pure logic with an injected clock, no I/O, tested as a timeline.

Each ``tick()`` evaluates the rules on some cabinets. A new finding becomes an active alert (pending
until the rule's pending period has passed, then firing: both derived from its times). A finding
that disappears before the alert fired is forgotten, as in Prometheus; one that disappears after is
resolved (``ends_at`` set) and kept for ``resolved_retention``.

Which cabinets: with a fleet that hands out its changes (``Fleet.changed_since``), a tick evaluates

* every cabinet that said anything since the last tick (Last Will, a slot fault, the door: such
  alerts are raised and resolved at the same tick as a full evaluation would),
* the next slice of a round-robin sweep over the whole fleet, sized from the time since the last
  tick so that every cabinet is evaluated at least once every ``sweep`` (conditions that become
  true or false by time alone — silence, charging too long, the calendar's checks, school hours —
  are seen at most ``sweep`` later than by a full evaluation), but never fewer than ``min_slice``
  cabinets: a fleet up to that size is evaluated whole at every tick, exactly as before;
* the cabinets of pending alerts that fire by the next tick, so that an alert only fires after its
  condition was confirmed at the tick before (as a full evaluation would).

Only the alerts of evaluated cabinets can be cleared or resolved; the others stay as they are until
their cabinet's turn. A tick so costs what changed plus a slice, not the fleet (80,000 cabinets:
bench/alert_tick.py). Given only a callable that returns the whole fleet, every tick evaluates
every cabinet (the old way; tests compare the two).

Rules are only evaluated while the collector receives: with its own broker connection down every
cabinet would look silent, so alerts stay as they are until it is back, and silence is then
counted from the reconnect at the earliest. With several brokers, a cabinet last heard through a
connection that is down is left out the same way (``deaf``, server/brokers.py) until it is heard
again: neither raised nor resolved, whatever else is heard. A cabinet whose agent is away (Last
Will, or stopped) is judged on its last known state, so its alerts stay — but the rules that
judge iPads in their slots (``fresh_data_only``) raise nothing *new* from that stale state: an
iPad returned while the agent was down is not "not returned" at the next check (the offline alert
is what the technician needs then). Cabinet-level rules (door, mains, temperature) still raise
from the last known state. For ``settle`` after the collector starts receiving (a restart, a
reconnect) nothing is resolved: the retained messages that tell the truth about each cabinet are
still arriving, and an alert loaded from the state file must not be resolved by a fleet that is
still empty. Nor is an alert resolved while its cabinet is unknown to the fleet.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from server.fleet import CabinetKey, CabinetView, FleetStatus
from server.org import Organisation
from server.schoolcal import Calendars

from .model import Alert, AlertState, fingerprint
from .rules import Rule, RuleContext
from .rules.base import RuleCache
from .store import AlertStore

__all__ = ["DEFAULT_SWEEP", "MIN_SLICE", "AlertEngine", "FleetChanges", "TickStats"]

log = logging.getLogger(__name__)

# Up to this many cabinets every tick evaluates the whole fleet (a district: ~140 cabinets).
MIN_SLICE: Final = 1000
DEFAULT_SWEEP: Final = timedelta(seconds=30)


class FleetChanges(Protocol):
    """What the engine needs of ``server.fleet.Fleet``."""

    def changed_since(self, version: int) -> tuple[int, list[CabinetView]]:
        """(the current version, the cabinets whose record changed after ``version``)."""


@dataclass(frozen=True, slots=True)
class TickStats:
    """What the last tick evaluated: ``evaluated`` cabinets of ``fleet``, of which ``changed``
    reported since the tick before (for tests and the benchmark)."""

    fleet: int = 0
    evaluated: int = 0
    changed: int = 0


# (starts_at, fingerprint, active_at, cabinet): an alert not yet logged as firing.
_Due = tuple[datetime, str, datetime, CabinetKey]


def _by_key(view: CabinetView) -> CabinetKey:
    return view.key


class AlertEngine:
    def __init__(
        self,
        rules: Sequence[Rule],
        store: AlertStore,
        fleet: FleetChanges | Callable[[], Sequence[CabinetView]],
        clock: Callable[[], datetime],
        resolved_retention: timedelta = timedelta(days=1),
        receiving_since: Callable[[], datetime | None] | None = None,
        org: Organisation | None = None,
        calendars: Calendars | None = None,
        settle: timedelta = timedelta(0),
        sweep: timedelta = DEFAULT_SWEEP,
        min_slice: int = MIN_SLICE,
        deaf: Callable[[], Callable[[CabinetKey], bool] | None] | None = None,
    ) -> None:
        """``deaf``: asked at each tick, whether a cabinet is out of earshot (its broker
        connection down, ``BrokerLinks.deaf``; None: every cabinet can be heard)."""
        names = [rule.name for rule in rules]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate rule names: {names}")
        if sweep <= timedelta(0) or min_slice < 1:
            raise ValueError("need sweep > 0 and min_slice >= 1")
        changed_since = getattr(fleet, "changed_since", None)
        if callable(changed_since):
            self._changes: Callable[[int], tuple[int, list[CabinetView]]] | None = changed_since
            self._snapshot: Callable[[], Sequence[CabinetView]] | None = None
        elif callable(fleet):
            self._changes, self._snapshot = None, fleet
        else:
            raise TypeError("fleet must have changed_since() or be a callable returning cabinets")
        self._rules = list(rules)
        self._store = store
        self._clock = clock
        self._retention = resolved_retention
        self._settle = settle
        self._sweep = sweep
        self._min_slice = min_slice
        self._last_tick: datetime | None = None
        self._receiving_since = receiving_since or (lambda: datetime.min.replace(tzinfo=UTC))
        self._deaf = deaf or (lambda: None)
        self._org = org or Organisation()
        self._cache = RuleCache(self._org)  # across ticks: see RuleCache
        self._calendars = calendars or Calendars(ZoneInfo(self._org.timezone), self._org.state, [],
                                                 weekdays=self._org.weekday_numbers,
                                                 public_holidays=self._org.public_holidays)
        # The fleet as of the last change feed read, and the sweep's order and position in it.
        self._version = 0
        self._cabinets: dict[CabinetKey, CabinetView] = {}
        self._order: list[CabinetKey] = []
        self._cursor = 0
        # Heap of the alerts not yet logged as firing (read from the store at the first tick).
        self._due: list[_Due] = []
        self._loaded = False
        self.last = TickStats()

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
        if not self._loaded:
            for alert in self._store.active():  # once: alerts from before a restart
                self._schedule(alert)
            self._loaded = True
        cabinets, known = self._select(now, receiving_since)
        ctx = RuleContext(cabinets, now, receiving_since, self._org, self._calendars, self._cache)
        settled = now - receiving_since >= self._settle
        evaluated = {c.key for c in cabinets}
        active: dict[str, dict[str, Alert]] = {}
        for alert in self._store.active_for(evaluated):
            active.setdefault(alert.name, {})[alert.fingerprint] = alert
        for rule in self._rules:
            current = active.get(rule.name, {})
            seen = self._apply(rule, ctx, current, evaluated)
            for alert in current.values():
                if alert.fingerprint in seen:
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

    def _select(self, now: datetime,
                receiving_since: datetime) -> tuple[list[CabinetView], Collection[CabinetKey]]:
        """The cabinets to evaluate now (sorted by key), and the keys of every known cabinet."""
        if self._changes is None:
            assert self._snapshot is not None
            everything = list(self._snapshot())
            deaf = self._deaf()
            judged = everything if deaf is None else [c for c in everything if not deaf(c.key)]
            self.last = TickStats(len(everything), len(judged), len(everything))
            return judged, {c.key for c in everything}
        self._version, changed = self._changes(self._version)
        for view in changed:
            if view.key not in self._cabinets:
                self._order.append(view.key)
            self._cabinets[view.key] = view
        size = len(self._order)
        # The slice covers the time since the last tick, not a time without reception (nothing
        # could become true by time alone then: silence counts from the reconnect).
        since = max(self._last_tick, receiving_since) if self._last_tick else None
        elapsed = max(now - since, timedelta(0)) if since else None
        if elapsed is None or size <= self._min_slice:
            chosen: Iterable[CabinetView] = self._cabinets.values()
        else:
            take = min(size, max(self._min_slice, math.ceil(size * (elapsed / self._sweep))))
            keys = {view.key for view in changed}
            end = self._cursor + take
            keys.update(self._order[self._cursor:end])
            keys.update(self._order[:max(0, end - size)])  # wrapped around
            self._cursor = end % size
            keys.update(k for k in self._due_by(now + elapsed) if k in self._cabinets)
            chosen = (self._cabinets[k] for k in keys)
        deaf = self._deaf()
        if deaf is not None:  # out of earshot: judged again once heard, as an unknown cabinet
            chosen = [view for view in chosen if not deaf(view.key)]
        cabinets = sorted(chosen, key=_by_key)
        self.last = TickStats(size, len(cabinets), len(changed))
        return cabinets, self._cabinets

    def _due_by(self, horizon: datetime) -> list[CabinetKey]:
        """Cabinets of alerts that fire by ``horizon``: a walk of the heap's top, not all of it."""
        heap, keys = self._due, []
        stack = [0] if heap else []
        while stack:
            i = stack.pop()
            if heap[i][0] <= horizon:
                keys.append(heap[i][3])
                stack.extend(child for child in (2 * i + 1, 2 * i + 2) if child < len(heap))
        return keys

    def _schedule(self, alert: Alert) -> None:
        heapq.heappush(self._due, (alert.starts_at, alert.fingerprint, alert.active_at,
                                   alert.cabinet_key))

    def _apply(self, rule: Rule, ctx: RuleContext, active: Mapping[str, Alert],
               evaluated: Collection[CabinetKey]) -> set[str]:
        """Put the rule's findings into the store; returns their fingerprints. ``active``: the
        rule's active alerts of the ``evaluated`` cabinets."""
        seen: set[str] = set()
        for finding in rule.evaluate(ctx):
            labels = {"alertname": rule.name, "severity": rule.severity.value, **finding.labels}
            fp = fingerprint(labels)
            seen.add(fp)
            if (labels.get("site", ""), labels.get("cabinet", "")) in evaluated:
                current = active.get(fp)
            else:  # a finding about a cabinet that was not handed to the rule
                current = self._store.get_active(fp)
            if current is None:
                if getattr(rule, "fresh_data_only", False) and _away(ctx, labels):
                    continue  # stale data: keeps what fires, raises nothing new
                candidate = Alert(labels, finding.annotations, ctx.now, ctx.now + rule.pending)
                self._store.put_active(candidate)
                self._schedule(candidate)
                log.info("alert %s %s: pending", rule.name, dict(candidate.labels))
            elif current.annotations != finding.annotations:
                # Same alert, new details (e.g. Last Will after silence): keep its times.
                self._store.put_active(Alert(current.labels, finding.annotations,
                                             current.active_at, current.starts_at))
        return seen

    def _log_new_firing(self, now: datetime) -> None:
        while self._due and self._due[0][0] <= now:
            _, fp, active_at, _ = heapq.heappop(self._due)
            alert = self._store.get_active(fp)
            if alert is None or alert.active_at != active_at:
                continue  # cleared before firing (or cleared and raised anew: its own entry)
            log.warning("alert %s %s: firing (%s)", alert.name, dict(alert.labels),
                        dict(alert.annotations))


_AWAY: Final = frozenset({FleetStatus.OFFLINE, FleetStatus.STOPPED})


def _away(ctx: RuleContext, labels: Mapping[str, str]) -> bool:
    view = ctx.cabinet((labels.get("site", ""), labels.get("cabinet", "")))
    return view is not None and view.status in _AWAY


def _resolution(rule: Rule, alert: Alert, ctx: RuleContext) -> Mapping[str, str]:
    """Extra annotations a rule adds when its alert resolves (e.g. why a cabinet was away)."""
    on_resolve = getattr(rule, "on_resolve", None)
    if on_resolve is None:
        return {}
    result: Mapping[str, str] = on_resolve(alert, ctx)
    return result
