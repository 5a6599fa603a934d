"""What the dashboard's pages and JSON routes share: the sources, scope checks and queries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Engine

from ..alerts.model import AlertState
from ..alerts.status import AlertStatus, alert_statuses
from ..api import ApiSources
from ..auth import Scope
from ..fleet import CabinetKey, CabinetView
from ..history import slot_changes_between
from ..history.source import ReportSource
from ..i18n import Language, cabinet_count
from ..presence import UnconfirmedSlot, unconfirmed_for_site
from ..sessions import SessionRecorder
from .history import SlotHistory, Transition
from .localtime import LocalTimes
from .overview import OrgIndex, Overview, OverviewCache
from .texts import translator

__all__ = ["Dashboard", "Hit", "OutOfScope"]

log = logging.getLogger(__name__)

MAX_HITS: Final = 50
# Receiving nothing this long makes every page say its view may be out of date; a reconnect's
# moment is not worth a notice.
STALE_AFTER: Final = timedelta(seconds=30)


class OutOfScope(Exception):
    """The caller may not see or do this (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str  # "slot" or "school"
    site: str
    cabinet: str | None
    slot: int | None
    label: str


@dataclass
class Dashboard:
    sources: ApiSources
    sessions: SessionRecorder | None = None
    history: SlotHistory = field(default_factory=SlotHistory)
    # The durable history (server/history) in the store; None: only the in-memory recent one.
    store: Engine | None = None
    grafana_url: str | None = None
    reports: ReportSource | None = None  # school reports (server/history); None: no store
    sample_s: float = 5.0
    index: OrgIndex = field(init=False)
    counts: OverviewCache = field(init=False)
    _sampled_version: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.index = OrgIndex.of(self.sources.org)
        self.counts = OverviewCache(self.index)

    def stale_since(self, lang: Language) -> str | None:
        """Since when this collector receives nothing (no broker delivers to it), as pages show
        times, once that has lasted ``STALE_AFTER``; None while it receives."""
        since = self.sources.mqtt_stats().silent_since
        now = self.sources.clock()
        if since is None or now - since < STALE_AFTER:
            return None
        return LocalTimes(self.sources.org.zone, lang, now).short(since)

    def unheard(self, scope: Scope, lang: Language) -> list[str]:
        """One line per broker connection down for ``STALE_AFTER`` with cabinets of the caller's
        out of earshot (server/brokers.py): how many, and since when they are not monitored."""
        t, now = translator(lang), self.sources.clock()
        lines = []
        for unheard in self.sources.unheard():
            count = sum(1 for site, _ in unheard.cabinets if scope.sees(site))
            if count and now - unheard.since >= STALE_AFTER:
                lines.append(t("unheard_view", broker=unheard.broker,
                               since=LocalTimes(self.sources.org.zone, lang, now).short(unheard.since),
                               count=cabinet_count(count, lang)))
        return lines

    def statuses(self, scope: Scope) -> list[AlertStatus]:
        state = self.sources.state
        statuses = alert_statuses(self.sources.alerts.all(), state.silences(), state.acks(),
                                  self.sources.clock())
        return [s for s in statuses if scope.sees_labels(s.alert.labels)]

    def firing_counts(self, scope: Scope) -> dict[CabinetKey, int]:
        counts: dict[CabinetKey, int] = {}
        for status in self.statuses(scope):
            if status.state is AlertState.FIRING:
                key = status.alert.cabinet_key
                counts[key] = counts.get(key, 0) + 1
        return counts

    def overview(self, scope: Scope, page: int = 1, per_page: int = 200) -> Overview:
        """The same as ``build_overview`` over the whole fleet, from the kept counts: costs the
        cabinets changed since the last request and one page, not 80,000 cabinets."""
        return self.counts.build(self.sources.fleet, self.firing_counts(scope), scope.sites,
                                 page, per_page)

    def views(self, scope: Scope) -> Iterator[CabinetView]:
        """The cabinets the caller sees, by site and cabinet. A school's viewer or a
        municipality's technician costs their cabinets (looked up one by one), not the fleet."""
        fleet = self.sources.fleet
        if scope.sites is None:
            yield from fleet.snapshot()
            return
        for site, cabinet in self.counts.keys_of(fleet, scope.sites):
            view = fleet.get(site, cabinet)
            if view is not None:
                yield view

    def cabinets_of(self, site: str) -> list[str]:
        """A school's cabinet ids, seen or configured, without a pass over the fleet."""
        return self.counts.cabinets_of(self.sources.fleet, site)

    def cabinet(self, scope: Scope, site: str, cabinet: str) -> CabinetView | None:
        if not scope.sees(site):
            raise OutOfScope(site)
        return self.sources.fleet.get(site, cabinet)

    def school(self, scope: Scope, site: str) -> list[CabinetView]:
        """A school's cabinets the fleet knows, by id (looked up, not swept)."""
        if not scope.sees(site):
            raise OutOfScope(site)
        fleet = self.sources.fleet
        return [view for cabinet in self.cabinets_of(site)
                if (view := fleet.get(site, cabinet)) is not None]

    def unconfirmed(self, cabinets: list[CabinetView]) -> list[UnconfirmedSlot]:
        """The charged slots of these cabinets (of one school) whose iPad may have been taken out
        unseen, with the organisation's asset tags; ordered by cabinet and slot."""
        if not cabinets:
            return []
        return unconfirmed_for_site(cabinets, self.sources.org, cabinets[0].site)

    def search(self, scope: Scope, query: str) -> list[Hit]:
        needle = query.strip().lower()
        if not needle:
            return []
        hits: list[Hit] = []
        for site, name in self.index.school_names.items():
            if scope.sees(site) and (needle in site.lower() or needle in name.lower()):
                hits.append(Hit("school", site, None, None, name))
        for view in self.views(scope):
            for slot in view.slots:
                if slot.asset_tag and needle in slot.asset_tag.lower():
                    hits.append(Hit("slot", view.site, view.cabinet, slot.slot, slot.asset_tag))
            if len(hits) >= MAX_HITS:
                break
        return hits[:MAX_HITS]

    def sample(self) -> int:
        """Record in the slot history the cabinets that changed since the last call (the fleet's
        change feed: their cost, not a sweep over the fleet). Returns how many."""
        version, changed = self.sources.fleet.changed_since(self._sampled_version)
        self._sampled_version = version
        return self.history.observe(changed, self.sources.clock())

    def transitions(self, site: str, cabinet: str, slot: int, start: datetime,
                    end: datetime) -> list[Transition]:
        """The slot's state changes from ``start`` (with the state it started in): from the
        store when there is one (they survive restarts), else from memory."""
        if self.store is None:
            return list(self.history.transitions(site, cabinet, slot))
        return [Transition(c.at, c.state)
                for c in slot_changes_between(self.store, site, cabinet, slot, start, end)]

    async def sample_forever(self) -> None:
        """Feed the slot history from the fleet state (a task of the server's event loop)."""
        while True:
            try:
                self.sample()
            except Exception:  # top of a task: a bad record must not end the history for good
                log.exception("slot history sampling failed")
            await asyncio.sleep(self.sample_s)
