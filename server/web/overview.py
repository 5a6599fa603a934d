"""The fleet overview as plain values: district → municipality → school → cabinet, with counts.

Pure (no web framework, no clock), so the page, the JSON API and the benchmark share it. Counts
are over the whole scope; only the cabinets of the requested page are listed, so 80,000 cabinets
cost one pass to count and a page's worth to render.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from cabinet_agent.protocol import SlotState

from ..fleet import CabinetKey, CabinetView, FleetStatus
from ..org import Organisation

__all__ = ["CabinetRow", "Counts", "MunicipalityNode", "OrgIndex", "Overview", "SchoolNode",
           "alert_counts", "build_overview", "slot_counts"]

UNKNOWN_MUNICIPALITY: Final = "-"
_PRESENT: Final = frozenset({SlotState.CHARGING, SlotState.CHARGED, SlotState.PRESENT_IDLE,
                             SlotState.FAULT})
_FAULTY: Final = frozenset({SlotState.FAULT, SlotState.PRESENT_IDLE})


@dataclass(slots=True)
class Counts:
    """``present``: an iPad is in the slot; ``missing``: the slot is empty; ``faulty``: a charge
    fault, or present but drawing nothing; ``alerts``: firing alerts."""

    cabinets: int = 0
    online: int = 0
    slots: int = 0
    present: int = 0
    charging: int = 0
    charged: int = 0
    missing: int = 0
    faulty: int = 0
    unknown: int = 0
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
    for slot in view.slots:
        state = slot.state
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
