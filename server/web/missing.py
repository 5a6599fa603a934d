"""The "Fehlende iPads" list (issue 16, item 3): the iPads a teacher should ask about, per school,
municipality or district, as plain values (no web framework, no clock: ``now`` is passed in).

Two kinds of evidence make an iPad missing (docs/alerts.md ``ipad_not_returned``,
docs/classification.md "The evidence window"):

* **not back at the check**: an ``ipad_not_returned`` alert that is firing now, or that fired and
  was resolved today (local day; the iPad is back, but was missing at the check, so the teacher
  may still want to know who had it). Its certainty follows the alert's ``reason``: ``empty``
  (seen empty) is certain, ``no_sign`` (no top-up pulse for the evidence window) probable.
  Pending alerts (within the grace after the check) are not listed yet.
* **judged missing by evidence**: a slot the agent says is ``empty`` with certainty ``probable``
  (no sign of life for the whole evidence window), which has no alert yet because the verdict came
  after the last check. Only slots an iPad belongs in (an expected asset tag, as for the alert).

A slot counts once: an alert wins over the slot's state. A slot seen empty for certain without an
alert is not listed (during lessons iPads are out; that is what the check is for), nor a charged
slot that is merely *not confirmed* (the school page lists those).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from cabinet_agent.common.protocol import Certainty, SlotState

from ..alerts.model import Alert, AlertState
from ..fleet import CabinetView
from .overview import OrgIndex

__all__ = ["ALERT_NAME", "Found", "MissingIPad", "SchoolMissing", "by_school", "local_day",
           "missing_ipads"]

ALERT_NAME: Final = "ipad_not_returned"
_UTC: Final = ZoneInfo("UTC")
_DIGITS: Final = re.compile(r"(\d+)")


class Found(StrEnum):
    """How the iPad was found missing (a text key ``missing.found.<value>``)."""

    CHECK = "check"  # not back at the return check: an ipad_not_returned alert
    EVIDENCE = "evidence"  # empty by evidence (no top-up pulse), no check since the verdict


@dataclass(frozen=True, slots=True)
class MissingIPad:
    site: str
    school: str  # the organisation's name, else the site id
    municipality: str  # the organisation's name, else "" (a site outside the organisation)
    cabinet: str
    cabinet_name: str  # the organisation's name (the room), else the cabinet id
    slot: int
    asset_tag: str | None
    since: datetime | None  # seen empty from then, or (probable) may have left from then
    certainty: Certainty  # CERTAIN or PROBABLE
    found: Found
    check: datetime | None = None  # the return check it was missing at (Found.CHECK)
    back_at: datetime | None = None  # the alert resolved: the iPad is back since then

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.site, self.cabinet, self.slot)


@dataclass(frozen=True, slots=True)
class SchoolMissing:
    site: str
    school: str
    municipality: str
    items: tuple[MissingIPad, ...]


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return _aware(moment).astimezone(zone).date()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_UTC)


def _parsed(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def _counts_today(alert: Alert, now: datetime, zone: ZoneInfo) -> bool:
    state = alert.state(now)
    if state is AlertState.FIRING:
        return True
    return (state is AlertState.RESOLVED and alert.ends_at is not None
            and alert.starts_at <= alert.ends_at
            and local_day(alert.ends_at, zone) == local_day(now, zone))


def _newest(alerts: Iterable[Alert], now: datetime, zone: ZoneInfo,
            sees: Callable[[str], bool]) -> dict[tuple[str, str, int], Alert]:
    """Per slot the alert that counts: a firing one, else the latest resolved today."""
    chosen: dict[tuple[str, str, int], Alert] = {}
    for alert in alerts:
        labels = alert.labels
        if alert.name != ALERT_NAME or not sees(labels.get("site", "")):
            continue
        if not _counts_today(alert, now, zone):
            continue
        try:
            key = (labels["site"], labels.get("cabinet", ""), int(labels.get("slot", "")))
        except (KeyError, ValueError):
            continue
        held = chosen.get(key)
        if held is None or _rank(alert) > _rank(held):
            chosen[key] = alert
    return chosen


def _rank(alert: Alert) -> tuple[bool, datetime]:
    return (alert.ends_at is None, alert.ends_at or alert.active_at)


def missing_ipads(cabinets: Iterable[CabinetView], alerts: Iterable[Alert], index: OrgIndex,
                  sees: Callable[[str], bool], now: datetime,
                  zone: ZoneInfo) -> list[MissingIPad]:
    """The missing iPads of the sites ``sees`` admits, ordered by municipality, school, cabinet
    name and slot. ``cabinets``: the fleet's cabinets (of those sites or more); ``alerts``: the
    alert store's ``all()`` (active and resolved)."""
    by_alert = _newest(alerts, now, zone, sees)
    views = {view.key: view for view in cabinets if sees(view.site)}
    found: dict[tuple[str, str, int], MissingIPad] = {}
    for key, alert in by_alert.items():
        site, cabinet, number = key
        view = views.get((site, cabinet))
        current = next((s for s in view.slots if s.slot == number), None) if view else None
        probable = alert.annotations.get("reason") == "no_sign"
        if probable:
            since = _parsed(alert.annotations.get("unseen_since")) or _parsed(
                alert.annotations.get("last_draw_at"))
        elif current is not None and current.state is SlotState.EMPTY and current.since:
            since = current.since  # still empty: since it was taken out
        else:
            since = alert.active_at  # back again: at the latest from the check on
        found[key] = _item(index, site, cabinet, number, alert.labels.get("asset_tag"), since,
                           Certainty.PROBABLE if probable else Certainty.CERTAIN, Found.CHECK,
                           _parsed(alert.annotations.get("check")) or alert.active_at,
                           alert.ends_at if alert.state(now) is AlertState.RESOLVED else None)
    for view in views.values():
        for slot in view.slots:
            if slot.state is not SlotState.EMPTY or slot.certainty is not Certainty.PROBABLE:
                continue
            key = (view.site, view.cabinet, slot.slot)
            tag = slot.asset_tag  # the inventory's (server/assets.py)
            if key in found or tag is None:
                continue
            found[key] = _item(index, view.site, view.cabinet, slot.slot, tag,
                               slot.unseen_since or slot.last_draw_at or slot.since,
                               Certainty.PROBABLE, Found.EVIDENCE)
    return sorted(found.values(), key=_order)


def _item(index: OrgIndex, site: str, cabinet: str, slot: int, tag: str | None,
          since: datetime | None, certainty: Certainty, how: Found,
          check: datetime | None = None, back_at: datetime | None = None) -> MissingIPad:
    municipality = index.school_municipality.get(site)
    return MissingIPad(site, index.school_names.get(site, site),
                       index.municipality_names.get(municipality, "") if municipality else "",
                       cabinet, index.cabinet_names.get((site, cabinet), cabinet), slot, tag,
                       since, certainty, how, check, back_at)


def _natural(name: str) -> tuple[str | int, ...]:
    """"Raum 2" before "Raum 12": digits compare as numbers (text and numbers alternate)."""
    return tuple(int(part) if n % 2 else part.casefold()
                 for n, part in enumerate(_DIGITS.split(name)))


def _order(item: MissingIPad) -> tuple[object, ...]:
    return (item.municipality.casefold(), _natural(item.school), item.site,
            _natural(item.cabinet_name), item.cabinet, item.slot)


def by_school(items: Iterable[MissingIPad]) -> list[SchoolMissing]:
    """The (ordered) list cut into one part per school, in the same order."""
    parts: list[SchoolMissing] = []
    current: list[MissingIPad] = []
    for item in items:
        if current and current[0].site != item.site:
            parts.append(_part(current))
            current = []
        current.append(item)
    if current:
        parts.append(_part(current))
    return parts


def _part(items: list[MissingIPad]) -> SchoolMissing:
    first = items[0]
    return SchoolMissing(first.site, first.school, first.municipality, tuple(items))
