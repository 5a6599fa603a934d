"""Read the durable history back: a slot's changes in a time range (with the state it was in at
the range's start), a cabinet's changes, an iPad's changes wherever it was."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from cabinet_agent.common.protocol import Certainty, SlotState

from ..store.schema import cabinet_changes, slot_changes

__all__ = ["CabinetChange", "SlotChange", "cabinet_changes_between", "ipad_changes",
           "slot_changes_between"]


@dataclass(frozen=True, slots=True)
class SlotChange:
    site: str
    cabinet: str
    slot: int
    at: datetime
    state: SlotState
    certainty: Certainty | None
    asset_tag: str | None


@dataclass(frozen=True, slots=True)
class CabinetChange:
    at: datetime
    status: str
    door: str
    mains: str


def _slot_change(row: object) -> SlotChange:
    return SlotChange(row.site, row.cabinet, row.slot, row.at, SlotState(row.state),  # type: ignore[attr-defined]
                      Certainty(row.certainty) if row.certainty else None, row.asset_tag)  # type: ignore[attr-defined]


def slot_changes_between(engine: Engine, site: str, cabinet: str, slot: int, start: datetime,
                         end: datetime) -> list[SlotChange]:
    """The slot's changes from ``start`` to ``end``, oldest first, led by the last one before
    ``start`` (the state the range begins in), if any."""
    s = slot_changes.c
    place = (s.site == site, s.cabinet == cabinet, s.slot == slot)
    with engine.connect() as db:
        before = db.execute(select(slot_changes).where(*place, s.at < start)
                            .order_by(s.at.desc(), s.id.desc()).limit(1)).first()
        rows = db.execute(select(slot_changes).where(*place, s.at >= start, s.at <= end)
                          .order_by(s.at, s.id)).all()
    return [_slot_change(r) for r in ([before] if before is not None else []) + list(rows)]


def ipad_changes(engine: Engine, asset_tag: str, limit: int = 2000) -> list[SlotChange]:
    """The changes of every slot while this iPad was entered there, newest first."""
    s = slot_changes.c
    with engine.connect() as db:
        rows = db.execute(select(slot_changes).where(s.asset_tag == asset_tag)
                          .order_by(s.at.desc(), s.id.desc()).limit(limit)).all()
    return [_slot_change(r) for r in rows]


def cabinet_changes_between(engine: Engine, site: str, cabinet: str, start: datetime,
                            end: datetime) -> list[CabinetChange]:
    c = cabinet_changes.c
    place = (c.site == site, c.cabinet == cabinet)
    with engine.connect() as db:
        before = db.execute(select(cabinet_changes).where(*place, c.at < start)
                            .order_by(c.at.desc(), c.id.desc()).limit(1)).first()
        rows = db.execute(select(cabinet_changes).where(*place, c.at >= start, c.at <= end)
                          .order_by(c.at, c.id)).all()
    return [CabinetChange(r.at, r.status, r.door, r.mains)
            for r in ([before] if before is not None else []) + list(rows)]
