"""School reports: for a set of schools and a period of local days, from the daily roll-ups
(``rollup.py``) — readiness at school start, iPads not returned, charge sessions, energy and its
cost, cabinet availability — per school and day, with totals per municipality and for all; and
the batteries ranked by wear (``server.battery``) of the iPads at those schools."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Engine, select

from ..battery import BatteryAgeing, BatteryVerdict
from ..store.schema import daily_schools

__all__ = ["BatteryRow", "DayFigures", "Figures", "Report", "build_report"]


@dataclass(slots=True)
class DayFigures:
    day: date
    school_day: bool = False
    ready: int = 0  # slot-days: iPads charged at school start
    ready_known: int = 0  # slot-days judged at school start (charged or not)
    not_returned: int = 0
    return_known: int = 0
    sessions: int = 0
    energy_wh: float = 0.0

    def add(self, other: DayFigures) -> None:
        self.school_day = self.school_day or other.school_day
        self.ready += other.ready
        self.ready_known += other.ready_known
        self.not_returned += other.not_returned
        self.return_known += other.return_known
        self.sessions += other.sessions
        self.energy_wh += other.energy_wh

    @property
    def readiness(self) -> float | None:
        return self.ready / self.ready_known if self.ready_known else None


@dataclass(slots=True)
class Figures:
    """One school's (or a municipality's, or everybody's) figures for the period."""

    key: str  # site, municipality id, or "" for all
    name: str
    days: dict[date, DayFigures] = field(default_factory=dict)
    online_s: float = 0.0
    known_s: float = 0.0

    def day(self, day: date) -> DayFigures:
        found = self.days.get(day)
        if found is None:
            found = self.days[day] = DayFigures(day)
        return found

    def add(self, other: Figures) -> None:
        for day, figures in other.days.items():
            self.day(day).add(figures)
        self.online_s += other.online_s
        self.known_s += other.known_s

    def _sum(self, pick: Callable[[DayFigures], float]) -> float:
        return sum(pick(d) for d in self.days.values())

    @property
    def school_days(self) -> int:
        return sum(1 for d in self.days.values() if d.school_day)

    @property
    def ready(self) -> int:
        return int(self._sum(lambda d: d.ready))

    @property
    def ready_known(self) -> int:
        return int(self._sum(lambda d: d.ready_known))

    @property
    def readiness(self) -> float | None:
        known = self.ready_known
        return self.ready / known if known else None

    @property
    def not_returned(self) -> int:
        return int(self._sum(lambda d: d.not_returned))

    @property
    def sessions(self) -> int:
        return int(self._sum(lambda d: d.sessions))

    @property
    def energy_kwh(self) -> float:
        return self._sum(lambda d: d.energy_wh) / 1000

    @property
    def availability(self) -> float | None:
        return self.online_s / self.known_s if self.known_s else None

    def series(self) -> list[DayFigures]:
        return [self.days[d] for d in sorted(self.days)]


@dataclass(frozen=True, slots=True)
class BatteryRow:
    verdict: BatteryVerdict
    site: str | None
    cabinet: str | None
    slot: int | None


@dataclass(slots=True)
class Report:
    first: date
    last: date
    price_eur_kwh: float
    schools: list[Figures]
    municipalities: list[Figures]
    total: Figures
    batteries: list[BatteryRow]

    def cost_eur(self, figures: Figures) -> float:
        return figures.energy_kwh * self.price_eur_kwh


def build_report(engine: Engine, sites: Sequence[str], first: date, last: date, *,
                 names: Callable[[str], str], municipality_of: Callable[[str], str],
                 municipality_names: Callable[[str], str], price_eur_kwh: float,
                 batteries: BatteryAgeing | None = None,
                 places: Callable[[Iterable[str]], dict[str, tuple[str, str, int]]] | None = None,
                 ) -> Report:
    """The report for ``sites`` from ``first`` to ``last`` (local days, both included), from the
    roll-ups present (``Rollups.ensure`` them first). ``places``: asset tag -> where it is now,
    for the batteries of these schools."""
    schools = {site: Figures(site, names(site)) for site in sites}
    d = daily_schools.c
    query = (select(d.site, d.day, d.school_day, d.ready, d.ready_known, d.not_returned,
                    d.return_known, d.sessions, d.energy_wh, d.online_s, d.known_s)
             .where(d.site.in_(list(sites)), d.day >= first, d.day <= last))
    with engine.connect() as db:
        for site, day, school_day, r, rk, g, gk, n, wh, online_s, known_s in db.execute(query):
            school = schools[site]
            school.days[day] = DayFigures(day, bool(school_day), r, rk, g, gk, n, wh)
            school.online_s += online_s
            school.known_s += known_s
    municipalities: dict[str, Figures] = {}
    total = Figures("", "")
    for site, figures in schools.items():
        mun = municipality_of(site)
        municipalities.setdefault(mun, Figures(mun, municipality_names(mun))).add(figures)
        total.add(figures)
    rows: list[BatteryRow] = []
    if batteries is not None and places is not None:
        where = places(sites)
        for verdict in batteries.verdicts(where):
            site, cabinet, slot = where.get(verdict.asset_tag, (None, None, None))
            rows.append(BatteryRow(verdict, site, cabinet, slot))
    ordered = sorted(schools.values(), key=lambda f: (municipality_of(f.key), f.name))
    return Report(first, last, price_eur_kwh, ordered,
                  sorted(municipalities.values(), key=lambda f: f.name), total, rows)
