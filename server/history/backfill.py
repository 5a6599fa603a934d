"""Fill the durable history from before it existed: the collector's event log (table ``events`` of
the store, ``server/events.py``) holds every ``slot_changed``, ``door_changed`` and ``mains_changed``
event since the collector first ran, with the agent's time. Each becomes a row of ``slot_changes`` or
``cabinet_changes`` — only older than the oldest row the store has for that slot or cabinet, so a
backfill never doubles what was recorded, and running it twice adds nothing.

What the events cannot tell is left out: the certainty of a state (null), the agent's status
between events (a cabinet that sent an event was online), and which iPad was in a slot then (the
inventory's iPad of that slot now). The days it touches are rolled up again at the next report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select

from cabinet_agent.common.protocol import DoorState, MainsState, SlotState

from ..store.schema import cabinet_changes, rollup_days, slot_changes
from ..store.schema_events import events as event_log

__all__ = ["BackfillReport", "backfill_from_events"]

_SLOT_STATES = frozenset(s.value for s in SlotState)
_DOOR = frozenset(s.value for s in DoorState)
_MAINS = frozenset(s.value for s in MainsState)


@dataclass(frozen=True, slots=True)
class BackfillReport:
    slot_rows: int
    cabinet_rows: int
    skipped: int  # events at or after what the store has, or with a value no state has
    first: datetime | None
    last: datetime | None


def backfill_from_events(engine: Engine, tags: Callable[[str, str], Mapping[int, str]],
                         zone_day: Callable[[datetime], date]) -> BackfillReport:
    """Add the event log's state changes older than the store's own history. ``tags``: the
    inventory's slot -> asset tag of a cabinet; ``zone_day``: a moment's local day (whose roll-up
    is made again). An older installation's ``events.sqlite`` must be in the store already
    (``server.events.take_over_events``: the collector's start, or the CLI before this)."""
    e = event_log.c
    query = (select(e.site, e.cabinet, e.ts, e.kind, e.slot, e.new)
             .where(e.kind.in_(("slot_changed", "door_changed", "mains_changed")))
             .order_by(e.site, e.cabinet, e.ts, e.seq))
    with engine.connect() as db:
        events = db.execute(query).all()
    s, c = slot_changes.c, cabinet_changes.c
    with engine.connect() as db:
        oldest_slot = {(site, cabinet, slot): at for site, cabinet, slot, at in db.execute(
            select(s.site, s.cabinet, s.slot, func.min(s.at)).group_by(s.site, s.cabinet, s.slot))}
        oldest_cabinet = {(site, cabinet): at for site, cabinet, at in db.execute(
            select(c.site, c.cabinet, func.min(c.at)).group_by(c.site, c.cabinet))}
    slot_rows: list[dict[str, Any]] = []
    cabinet_rows: list[dict[str, Any]] = []
    state: dict[tuple[str, str], tuple[str, str]] = {}  # (door, mains) as the events left them
    touched: set[tuple[str, date]] = set()
    skipped = 0
    moments: list[datetime] = []
    for site, cabinet, at, kind, slot, new in events:
        if kind == "slot_changed":
            limit = oldest_slot.get((site, cabinet, slot))
            if slot is None or new not in _SLOT_STATES or (limit is not None and at >= limit):
                skipped += 1
                continue
            slot_rows.append({"site": site, "cabinet": cabinet, "slot": slot, "at": at,
                              "state": new, "certainty": None,
                              "asset_tag": tags(site, cabinet).get(slot),
                              "last_draw_at": None, "unseen_since": None, "fault": None})
        else:
            limit = oldest_cabinet.get((site, cabinet))
            allowed = _DOOR if kind == "door_changed" else _MAINS
            if new not in allowed or (limit is not None and at >= limit):
                skipped += 1
                continue
            door, mains = state.get((site, cabinet), ("unknown", "unknown"))
            door, mains = (new, mains) if kind == "door_changed" else (door, new)
            state[(site, cabinet)] = (door, mains)
            cabinet_rows.append({"site": site, "cabinet": cabinet, "at": at, "status": "online",
                                 "door": door, "mains": mains})
        touched.add((site, zone_day(at)))
        moments.append(at)
    with engine.begin() as db:
        if slot_rows:
            db.execute(insert(slot_changes), slot_rows)
        if cabinet_rows:
            db.execute(insert(cabinet_changes), cabinet_rows)
        for site, day in touched:  # made again at the next report or nightly pass
            db.execute(delete(rollup_days).where(rollup_days.c.site == site,
                                                 rollup_days.c.day == day))
    return BackfillReport(len(slot_rows), len(cabinet_rows), skipped,
                          min(moments) if moments else None, max(moments) if moments else None)
