"""What the dashboard asks for a report: the roll-ups it needs made, then the figures."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import Engine

from ..battery import BatteryAgeing
from ..inventory import Inventory
from ..org import Organisation
from ..schoolcal import Calendars
from .reports import Report, build_report
from .rollup import Rollups

__all__ = ["ReportSource"]

UNKNOWN_MUNICIPALITY = ""


class ReportSource:
    def __init__(self, engine: Engine, org: Organisation, calendars: Calendars,
                 battery: BatteryAgeing | None, inventory: Inventory | None,
                 price_eur_kwh: float, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.org = org
        self.rollups = Rollups(engine, org, calendars)
        self.battery = battery
        self.inventory = inventory
        self.price_eur_kwh = price_eur_kwh
        self.clock = clock
        self._names = {s.site: s.name for s in org.schools}
        self._municipality = {s.site: s.municipality for s in org.schools}
        self._municipality_names = {m.id: m.name for m in org.municipalities}

    def _places(self, sites: Iterable[str]) -> dict[str, tuple[str, str, int]]:
        if self.inventory is None:
            return {}
        return {i.asset_tag: (i.place.site, i.place.cabinet, i.place.slot)
                for i in self.inventory.ipads(list(sites), unplaced=False, limit=10**7)
                if i.place is not None}

    def report(self, sites: Sequence[str], first: date, last: date) -> Report:
        """The report for these schools and days (both included); the days that are over and
        not rolled up yet are rolled up first."""
        self.rollups.ensure(sites, first, last, self.clock())
        return build_report(
            self.engine, sites, first, last, names=lambda site: self._names.get(site, site),
            municipality_of=lambda site: self._municipality.get(site, UNKNOWN_MUNICIPALITY),
            municipality_names=lambda mun: self._municipality_names.get(mun, mun),
            price_eur_kwh=self.price_eur_kwh, batteries=self.battery, places=self._places)
