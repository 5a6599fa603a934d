"""The fleet overview as plain values: district → municipality → school → cabinet, with counts.

No web framework, no clock, so the page, the JSON API and the benchmark share it. Counts are over
the whole scope; only the cabinets of the requested page are listed.

``build_overview`` computes it from scratch: a pass over every slot and a sort of every cabinet,
1.5–2 s at 80,000 cabinets. ``OverviewCache`` gives the same result (property-tested) from counts
kept per cabinet, school and municipality, updated from ``Fleet.changed_since`` — so a request
costs the cabinets that changed since the last one plus a page, not the fleet (docs/benchmarks.md).
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import add, attrgetter, sub
from typing import Final
from urllib.parse import quote

from cabinet_agent.common.protocol import Certainty, SlotState

from ..fleet import CabinetKey, CabinetView, Fleet, FleetStatus
from ..org import Organisation
from ..presence import blind_to_full_removal, certainty_of

__all__ = ["CabinetRow", "Counts", "MunicipalityNode", "OrgIndex", "Overview", "OverviewCache",
           "OverviewFilter", "SchoolNode", "alert_counts", "build_overview", "overview_filter",
           "slot_counts"]

UNKNOWN_MUNICIPALITY: Final = "-"
_PRESENT: Final = frozenset({SlotState.CHARGING, SlotState.CHARGED, SlotState.PRESENT_IDLE,
                             SlotState.FAULT})
_FAULTY: Final = frozenset({SlotState.FAULT, SlotState.PRESENT_IDLE})


@dataclass(slots=True)
class Counts:
    """``present``: an iPad is in the slot; ``missing``: the slot is empty; ``faulty``: a charge
    fault, or present but drawing nothing; ``unconfirmed``: charged, but the iPad may have been
    taken out unseen since (certainty ``probable``); ``cannot_tell``: slots the hardware cannot
    judge (certainty ``cannot_tell``; ``unknown`` from agents before revision 2); ``power_only``:
    cabinets that measure slot power without presence inputs, so cannot see a full iPad leave;
    ``alerts``: firing alerts."""

    cabinets: int = 0
    online: int = 0
    slots: int = 0
    present: int = 0
    charging: int = 0
    charged: int = 0
    missing: int = 0
    faulty: int = 0
    unknown: int = 0
    unconfirmed: int = 0
    cannot_tell: int = 0
    power_only: int = 0
    alerts: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


def slot_counts(view: CabinetView | None, alerts: int = 0) -> Counts:
    counts = Counts(cabinets=1, alerts=alerts)
    if view is None:
        return counts
    counts.online = int(view.status is FleetStatus.ONLINE)
    counts.power_only = int(bool(blind_to_full_removal(view)))
    for slot in view.slots:
        state = slot.state
        certainty = certainty_of(slot)
        if certainty is Certainty.CANNOT_TELL:
            counts.cannot_tell += 1
        elif certainty is Certainty.PROBABLE and state is SlotState.CHARGED:
            counts.unconfirmed += 1
        counts.slots += 1
        if state in _PRESENT:
            counts.present += 1
        if state is SlotState.CHARGING:
            counts.charging += 1
        elif state is SlotState.CHARGED:
            counts.charged += 1
        elif state is SlotState.EMPTY:
            counts.missing += 1
        elif state is SlotState.UNKNOWN:
            counts.unknown += 1
        if state in _FAULTY:
            counts.faulty += 1
    return counts


@dataclass(frozen=True, slots=True)
class OrgIndex:
    """Look-ups into the organisation by id, built once (the org does not change at run time)."""

    district: str
    school_names: Mapping[str, str]
    school_municipality: Mapping[str, str]
    municipality_names: Mapping[str, str]
    cabinet_names: Mapping[CabinetKey, str]
    configured: tuple[CabinetKey, ...]

    @classmethod
    def of(cls, org: Organisation) -> OrgIndex:
        return cls(
            org.district,
            {s.site: s.name for s in org.schools},
            {s.site: s.municipality for s in org.schools},
            {m.id: m.name for m in org.municipalities},
            {(c.school, c.id): c.name or c.id for c in org.cabinets},
            tuple((c.school, c.id) for c in org.cabinets),
        )

    def municipality_of(self, site: str) -> str:
        return self.school_municipality.get(site, UNKNOWN_MUNICIPALITY)


@dataclass(frozen=True, slots=True)
class OverviewFilter:
    """The overview's filters (``?municipality=&school=``) as the caller may use them: the choices
    are the municipalities and schools of their scope, a value outside them is dropped (so a link
    can never widen a scope, and an old link shows the whole scope instead of an error)."""

    municipality: str  # "" for all
    school: str  # "" for all
    municipalities: tuple[tuple[str, str], ...]  # (id, name) to choose from, by name
    schools: tuple[tuple[str, str], ...]  # (site, name) to choose from, by name
    sites: frozenset[str] | None  # what the overview counts and lists; None: the whole fleet

    @property
    def active(self) -> bool:
        return bool(self.municipality or self.school)

    @property
    def query(self) -> str:
        """The filter as query parameters (for the pager's links), "" when none is set."""
        parts = [f"municipality={quote(self.municipality)}"] if self.municipality else []
        parts += [f"school={quote(self.school)}"] if self.school else []
        return "&".join(parts)


def overview_filter(index: OrgIndex, scope: frozenset[str] | None, municipality: str = "",
                    school: str = "") -> OverviewFilter:
    """``scope``: the sites the caller sees (``Scope.sites``, None for all). The schools to choose
    from are the organisation's in that scope (within the chosen municipality, if one is)."""
    visible = [site for site in index.school_names if scope is None or site in scope]
    municipalities = sorted({(index.municipality_of(site),
                              index.municipality_names.get(index.municipality_of(site),
                                                           index.municipality_of(site)))
                             for site in visible}, key=lambda m: (m[1].casefold(), m[0]))
    if municipality not in {m for m, _ in municipalities}:
        municipality = ""
    if municipality:
        visible = [site for site in visible if index.municipality_of(site) == municipality]
    schools = tuple(sorted(((site, index.school_names[site]) for site in visible),
                           key=lambda s: (s[1].casefold(), s[0])))
    if school not in {site for site, _ in schools}:
        school = ""
    sites = (frozenset({school}) if school else frozenset(visible) if municipality else scope)
    return OverviewFilter(municipality, school, tuple(municipalities), schools, sites)


@dataclass(frozen=True, slots=True)
class CabinetRow:
    site: str
    cabinet: str
    name: str
    status: str  # online/offline/stopped/unknown, or "never" (configured, never seen)
    counts: Counts


@dataclass(slots=True)
class SchoolNode:
    site: str
    name: str
    counts: Counts = field(default_factory=Counts)
    cabinets: list[CabinetRow] = field(default_factory=list)


@dataclass(slots=True)
class MunicipalityNode:
    id: str
    name: str
    counts: Counts = field(default_factory=Counts)
    schools: dict[str, SchoolNode] = field(default_factory=dict)


@dataclass(slots=True)
class Overview:
    district: str
    counts: Counts
    municipalities: list[MunicipalityNode]
    page: int
    pages: int
    per_page: int
    total_cabinets: int


def build_overview(index: OrgIndex, cabinets: Iterable[CabinetView], alerts: Mapping[CabinetKey, int],
                   visible: Callable[[str], bool], page: int = 1, per_page: int = 200) -> Overview:
    """``cabinets``: the fleet (any order); configured cabinets never seen are added, those the
    caller may see (``visible(site)``) are counted and listed."""
    views: dict[CabinetKey, CabinetView | None] = {
        c.key: c for c in cabinets if visible(c.site)}
    for key in index.configured:
        if key not in views and visible(key[0]):
            views[key] = None

    def order(key: CabinetKey) -> tuple[str, str, str]:
        return (index.municipality_of(key[0]), key[0], key[1])

    keys = sorted(views, key=order)
    pages = max(1, -(-len(keys) // per_page))
    page = min(max(page, 1), pages)
    first, last = (page - 1) * per_page, page * per_page
    total = Counts()
    nodes: dict[str, MunicipalityNode] = {}
    for position, key in enumerate(keys):
        site, cabinet = key
        view = views[key]
        counts = slot_counts(view, alerts.get(key, 0))
        total.add(counts)
        mun_id = index.municipality_of(site)
        mun = nodes.get(mun_id)
        if mun is None:
            mun = nodes[mun_id] = MunicipalityNode(
                mun_id, index.municipality_names.get(mun_id, mun_id))
        mun.counts.add(counts)
        school = mun.schools.get(site)
        if school is None:
            school = mun.schools[site] = SchoolNode(site, index.school_names.get(site, site))
        school.counts.add(counts)
        if first <= position < last:
            school.cabinets.append(CabinetRow(
                site, cabinet, index.cabinet_names.get(key, cabinet),
                view.status.value if view is not None else "never", counts))
    listed = [_listed(m) for m in nodes.values()]
    return Overview(index.district, total, [m for m in listed if m.schools], page, pages,
                    per_page, len(keys))


def _listed(node: MunicipalityNode) -> MunicipalityNode:
    """Keep only the schools that have cabinets on this page (totals stay whole)."""
    node.schools = {k: s for k, s in node.schools.items() if s.cabinets}
    return node


def alert_counts(keys: Sequence[CabinetKey]) -> dict[CabinetKey, int]:
    out: dict[CabinetKey, int] = {}
    for key in keys:
        out[key] = out.get(key, 0) + 1
    return out


# -- kept up to date from the fleet's change feed ---------------------------------------------------

Tally = tuple[int, ...]  # Counts' fields but alerts, in their order
_WIDTH: Final = len(Counts.__slots__) - 1  # type: ignore[attr-defined]
_NEVER: Final[Tally] = (1,) + (0,) * (_WIDTH - 1)  # configured, never seen
_state: Final = attrgetter("state")
_certainty: Final = attrgetter("certainty")
_state_certainty: Final = attrgetter("state", "certainty")
_UNCONFIRMED: Final = (SlotState.CHARGED, Certainty.PROBABLE)
_OLD_UNKNOWN: Final = (SlotState.UNKNOWN, None)  # an agent before revision 2: cannot tell


def _tally(view: CabinetView | None) -> Tally:
    """``slot_counts(view)`` without alerts, as a tuple; the states and certainties counted in C,
    not per slot (pairs of both only when a cabinet has a probable or an unsaid certainty)."""
    if view is None:
        return _NEVER
    slots = view.slots
    count = list(map(_state, slots)).count
    charging, charged = count(SlotState.CHARGING), count(SlotState.CHARGED)
    idle, fault, unknown = count(SlotState.PRESENT_IDLE), count(SlotState.FAULT), count(SlotState.UNKNOWN)
    certainties = list(map(_certainty, slots))
    unsaid = certainties.count(None)
    if unsaid == len(slots):  # an older agent (or none yet): only unknown cannot be told
        cannot_tell, unconfirmed = unknown, 0
    else:
        cannot_tell, unconfirmed = certainties.count(Certainty.CANNOT_TELL), 0
        if unsaid or Certainty.PROBABLE in certainties:
            pairs = list(map(_state_certainty, slots))
            cannot_tell += pairs.count(_OLD_UNKNOWN) if unsaid else 0
            unconfirmed = pairs.count(_UNCONFIRMED)
    return (1, int(view.status is FleetStatus.ONLINE), len(slots),
            charging + charged + idle + fault, charging, charged, count(SlotState.EMPTY),
            fault + idle, unknown, unconfirmed, cannot_tell,
            int(bool(blind_to_full_removal(view))))


def _add(total: list[int], tally: Sequence[int]) -> None:
    total[:] = map(add, total, tally)


def _counts(tally: Sequence[int], alerts: int) -> Counts:
    return Counts(*tally, alerts)  # type: ignore[call-arg]  # the fields in order


class OverviewCache:
    """The overview's counts per cabinet, per school, per municipality and for the district, and
    the cabinets in overview order (re-sorted only when new ones appear). Records are immutable
    and replaced on every change, and the fleet's change feed names the replaced ones, so only
    those are recounted. No record is held: an idle dashboard must not keep a second fleet alive.
    Thread-safe (requests run in threads)."""

    def __init__(self, index: OrgIndex) -> None:
        self._index = index
        self._lock = threading.Lock()
        self._version = 0
        self._status: dict[CabinetKey, FleetStatus | None] = {}  # None: configured, never seen
        self._tallies: dict[CabinetKey, Tally] = {}
        self._schools: dict[str, list[int]] = {}
        self._municipalities: dict[str, list[int]] = {}
        self._total = [0] * _WIDTH
        self._by_site: dict[str, list[str]] = {}
        self._statuses: Counter[str] = Counter()  # cabinets seen, by status
        self._order: list[CabinetKey] = []  # overview order: municipality, site, cabinet
        self._new: list[CabinetKey] = []  # keys not yet in _order
        for key in index.configured:
            if key not in self._tallies:
                self._put(key, None)

    def _sort_key(self, key: CabinetKey) -> tuple[str, str, str]:
        return (self._index.municipality_of(key[0]), key[0], key[1])

    def _put(self, key: CabinetKey, view: CabinetView | None) -> None:
        site = key[0]
        new = _tally(view)
        old = self._tallies.get(key)
        if old is None:
            self._new.append(key)
            self._by_site.setdefault(site, []).append(key[1])
            old = (0,) * _WIDTH
        before = self._status.get(key)
        status = view.status if view is not None else None
        if status is not before:
            if before is not None:
                self._statuses[before.value] -= 1
            if status is not None:
                self._statuses[status.value] += 1
        self._status[key] = status
        self._tallies[key] = new
        if new != old:
            delta = tuple(map(sub, new, old))
            _add(self._schools.setdefault(site, [0] * _WIDTH), delta)
            _add(self._municipalities.setdefault(self._index.municipality_of(site),
                                                 [0] * _WIDTH), delta)
            _add(self._total, delta)

    def refresh(self, fleet: Fleet) -> None:
        """Fold in the cabinets that changed since the last call: their cost, not the fleet's."""
        with self._lock:
            self._refresh(fleet)

    def _refresh(self, fleet: Fleet) -> None:
        version, changed = fleet.changed_since(self._version)
        for view in changed:
            self._put(view.key, view)
        self._version = version

    def _ordered(self) -> list[CabinetKey]:
        if self._new:
            if len(self._new) <= 64:
                for key in self._new:
                    bisect.insort(self._order, key, key=self._sort_key)
            else:
                self._order.extend(self._new)
                self._order.sort(key=self._sort_key)
            self._new.clear()
        return self._order

    def cabinets_of(self, fleet: Fleet, site: str) -> list[str]:
        """The cabinet ids of a school: seen or configured."""
        with self._lock:
            self._refresh(fleet)
            return sorted(self._by_site.get(site, ()))

    def keys_of(self, fleet: Fleet, sites: Iterable[str]) -> list[CabinetKey]:
        """The cabinets of these schools, seen or configured, sorted by site and cabinet."""
        with self._lock:
            self._refresh(fleet)
            return sorted((site, cabinet) for site in set(sites)
                          for cabinet in self._by_site.get(site, ()))

    def statuses(self, fleet: Fleet) -> dict[str, int]:
        """Cabinets seen, by status (``online`` …)."""
        with self._lock:
            self._refresh(fleet)
            return {status: n for status, n in self._statuses.items() if n}

    def build(self, fleet: Fleet, alerts: Mapping[CabinetKey, int], sites: frozenset[str] | None,
              page: int = 1, per_page: int = 200) -> Overview:
        """``build_overview(index, fleet.snapshot(), alerts, visible, page, per_page)`` where
        ``visible(site)`` is ``sites is None or site in sites`` (``Scope.sees``)."""
        index = self._index
        with self._lock:
            self._refresh(fleet)
            order = self._ordered()
            if sites is None:
                keys: Sequence[CabinetKey] = order
            else:
                keys = sorted(((site, cabinet) for site in sites
                               for cabinet in self._by_site.get(site, ())), key=self._sort_key)
            pages = max(1, -(-len(keys) // per_page))
            page = min(max(page, 1), pages)
            listed = keys[(page - 1) * per_page:page * per_page]

            school_alerts: Counter[str] = Counter()
            for key, n in alerts.items():
                if n and key in self._tallies and (sites is None or key[0] in sites):
                    school_alerts[key[0]] += n
            municipality_alerts: Counter[str] = Counter()
            for site, n in school_alerts.items():
                municipality_alerts[index.municipality_of(site)] += n
            if sites is None:
                total: Sequence[int] = self._total
                municipalities: Mapping[str, Sequence[int]] = self._municipalities
            else:
                total = [0] * _WIDTH
                sums: dict[str, list[int]] = {}
                for site in sites:
                    tally = self._schools.get(site)
                    if tally is not None:
                        _add(total, tally)
                        _add(sums.setdefault(index.municipality_of(site), [0] * _WIDTH), tally)
                municipalities = sums

            nodes: dict[str, MunicipalityNode] = {}
            for key in listed:
                site, cabinet = key
                mun_id = index.municipality_of(site)
                mun = nodes.get(mun_id)
                if mun is None:
                    mun = nodes[mun_id] = MunicipalityNode(
                        mun_id, index.municipality_names.get(mun_id, mun_id),
                        _counts(municipalities[mun_id], municipality_alerts[mun_id]))
                school = mun.schools.get(site)
                if school is None:
                    school = mun.schools[site] = SchoolNode(
                        site, index.school_names.get(site, site),
                        _counts(self._schools[site], school_alerts[site]))
                status = self._status[key]
                school.cabinets.append(CabinetRow(
                    site, cabinet, index.cabinet_names.get(key, cabinet),
                    status.value if status is not None else "never",
                    _counts(self._tallies[key], alerts.get(key, 0))))
            return Overview(index.district, _counts(total, sum(school_alerts.values())),
                            list(nodes.values()), page, pages, per_page, len(keys))
