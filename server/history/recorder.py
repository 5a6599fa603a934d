"""Write the durable history: one row per change of a slot's state, certainty or iPad, and per
change of a cabinet's status, door or mains.

The fleet calls ``see(old, new, at)`` for every record it replaces (``Fleet(observer=…)``): on the
MQTT thread, under the fleet's lock, so it only compares the two records in memory and queues
rows; every change is seen, however quickly the next one follows. ``flush`` (a worker thread,
every few seconds) writes what is queued in one transaction. Each slot's first row of a run is
compared there with the store's newest and dropped when they agree, so the retained messages a
restarted collector receives write nothing that did not change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, and_, delete, func, insert, select, tuple_

from cabinet_agent.common.protocol import SlotState

from ..fleet import CabinetKey, CabinetView, SlotView
from ..store.schema import cabinet_changes, slot_changes

__all__ = ["HistoryRecorder"]

log = logging.getLogger(__name__)

_LOOKUP_CABINETS: Final = 500  # cabinets per query of the newest stored rows
MAX_PENDING: Final = 500_000  # rows queued between flushes; beyond, the oldest are dropped (logged)

SlotKey = tuple[str, str | None, str | None]  # state, certainty, asset tag
CabinetState = tuple[str, str, str]  # status, door, mains


def _slot_key(slot: SlotView) -> SlotKey:
    return (slot.state.value, slot.certainty.value if slot.certainty else None, slot.asset_tag)


def _cabinet_state(view: CabinetView) -> CabinetState:
    return (view.status.value, view.door.value, view.mains.value)


def _slot_row(view: CabinetView, slot: SlotView, state_changed: bool, at: datetime) -> dict[str, Any]:
    return {"site": view.site, "cabinet": view.cabinet, "slot": slot.slot,
            "at": slot.since if state_changed and slot.since is not None else at,
            "state": slot.state.value, "certainty": slot.certainty.value if slot.certainty else None,
            "asset_tag": slot.asset_tag, "last_draw_at": slot.last_draw_at,
            "unseen_since": slot.unseen_since, "fault": slot.fault}


def _cabinet_row(view: CabinetView, status_changed: bool, at: datetime) -> dict[str, Any]:
    status, door, mains = _cabinet_state(view)
    return {"site": view.site, "cabinet": view.cabinet,
            "at": view.status_since if status_changed and view.status_since is not None else at,
            "status": status, "door": door, "mains": mains}


class HistoryRecorder:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock
        self._lock = threading.Lock()
        self._slot_rows: list[dict[str, Any]] = []
        self._cabinet_rows: list[dict[str, Any]] = []
        # per cabinet, a bit per slot (bit 0: the cabinet's own row) whose first row of this run
        # was compared with the store's newest: an int, small at 80,000 cabinets
        self._checked: dict[CabinetKey, int] = {}
        self.rows_written = 0
        self.dropped = 0

    # -- the fleet's side: in memory, no I/O ---------------------------------------------------
    def see(self, old: CabinetView | None, new: CabinetView, at: datetime | None = None) -> None:
        """``new`` replaced ``old`` (None: the first record of this cabinet since the start)."""
        at = at or self._clock()
        rows = []
        before = old.slots if old is not None else ()
        if before is not new.slots:
            for index, slot in enumerate(new.slots):
                prior = before[index] if index < len(before) else None
                if prior is None and slot.state is SlotState.UNKNOWN and slot.since is None:
                    continue  # a slot the birth announced: nothing known of it yet
                if prior is None or prior.state is not slot.state \
                        or prior.certainty is not slot.certainty or prior.asset_tag != slot.asset_tag:
                    rows.append(_slot_row(new, slot, prior is None or prior.state is not slot.state,
                                          at))
        cabinet = None
        if old is None or (old.status, old.door, old.mains) != (new.status, new.door, new.mains):
            cabinet = _cabinet_row(new, old is None or old.status is not new.status, at)
        if not rows and cabinet is None:
            return
        with self._lock:
            self._slot_rows.extend(rows)
            if cabinet is not None:
                self._cabinet_rows.append(cabinet)
            excess = len(self._slot_rows) - MAX_PENDING
            if excess > 0:
                del self._slot_rows[:excess]
                self.dropped += excess

    def observe(self, views: Iterable[CabinetView]) -> int:
        """Write how these records differ from the store (what a restart sees first)."""
        for view in views:
            self.see(None, view)
        return self.flush()

    def discard(self) -> int:
        """Drop what is queued (another collector leads and writes the history); returns how many
        rows."""
        with self._lock:
            dropped = len(self._slot_rows) + len(self._cabinet_rows)
            self._slot_rows, self._cabinet_rows = [], []
        return dropped

    def resync(self, views: Iterable[CabinetView]) -> int:
        """Start recording anew (this collector starts to lead): forget which first rows were
        compared with the store, then write how these records differ from it."""
        self.discard()
        self._checked.clear()
        return self.observe(views)

    # -- the writer's side -------------------------------------------------------------------------
    def _stored(self, db: Any, keys: set[CabinetKey]) -> dict[CabinetKey, tuple[dict[int, SlotKey],
                                                                              CabinetState | None]]:
        """The newest stored rows of these cabinets: a few queries per flush, not two per cabinet
        (1,000 cabinets new to a run cost a second of the ingest thread's GIL that way)."""
        found: dict[CabinetKey, tuple[dict[int, SlotKey], CabinetState | None]] = {
            key: ({}, None) for key in keys}
        s, c = slot_changes.c, cabinet_changes.c
        ordered = sorted(keys)
        for start in range(0, len(ordered), _LOOKUP_CABINETS):
            some = ordered[start:start + _LOOKUP_CABINETS]
            newest = (select(func.max(s.id)).where(tuple_(s.site, s.cabinet).in_(some))
                      .group_by(s.site, s.cabinet, s.slot))
            for row in db.execute(select(s.site, s.cabinet, s.slot, s.state, s.certainty,
                                         s.asset_tag).where(s.id.in_(newest))):
                found[(row.site, row.cabinet)][0][row.slot] = (row.state, row.certainty,
                                                               row.asset_tag)
            last = (select(func.max(c.id)).where(tuple_(c.site, c.cabinet).in_(some))
                    .group_by(c.site, c.cabinet))
            for row in db.execute(select(c.site, c.cabinet, c.status, c.door, c.mains)
                                  .where(c.id.in_(last))):
                key = (row.site, row.cabinet)
                found[key] = (found[key][0], (row.status, row.door, row.mains))
        return found

    def _new_to_the_store(self, db: Any, slot_rows: list[dict[str, Any]],
                          cabinet_rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                                       list[dict[str, Any]],
                                                                       dict[CabinetKey, int]]:
        """Drop a slot's (or cabinet's) first row of this run when the store's newest says the
        same: after a restart the retained messages repeat what was recorded before it. Also
        returns what becomes checked, for the caller to note once the rows are committed."""
        marks: dict[CabinetKey, int] = {}

        def mask_of(key: CabinetKey) -> int:
            return marks.get(key, self._checked.get(key, 0))

        def unchecked(row: dict[str, Any], slot: int | None) -> bool:
            return not mask_of((row["site"], row["cabinet"])) >> (slot or 0) & 1

        stored = self._stored(db, {(r["site"], r["cabinet"]) for r in slot_rows if unchecked(r, r["slot"])}
                              | {(r["site"], r["cabinet"]) for r in cabinet_rows if unchecked(r, None)})

        def keep(row: dict[str, Any], slot: int | None) -> bool:
            key = (row["site"], row["cabinet"])
            bit = 1 << (slot if slot is not None else 0)
            mask = mask_of(key)
            if mask & bit:
                return True
            marks[key] = mask | bit
            newest_slots, newest_cabinet = stored[key]
            if slot is None:
                return newest_cabinet != (row["status"], row["door"], row["mains"])
            return newest_slots.get(slot) != (row["state"], row["certainty"], row["asset_tag"])

        slots = [row for row in slot_rows if keep(row, row["slot"])]
        cabinets = [row for row in cabinet_rows if keep(row, None)]
        return slots, cabinets, marks

    def flush(self) -> int:
        """Write what is queued; returns the rows written."""
        with self._lock:
            slot_rows, self._slot_rows = self._slot_rows, []
            cabinet_rows, self._cabinet_rows = self._cabinet_rows, []
        if not slot_rows and not cabinet_rows:
            return 0
        try:
            with self._engine.begin() as db:
                new_slots, new_cabinets, marks = self._new_to_the_store(db, slot_rows, cabinet_rows)
                if new_slots:
                    db.execute(insert(slot_changes), new_slots)
                if new_cabinets:
                    db.execute(insert(cabinet_changes), new_cabinets)
        except Exception:
            # the store is away (a database restart): the rows wait for the next flush, in order
            with self._lock:
                self._slot_rows[:0] = slot_rows
                self._cabinet_rows[:0] = cabinet_rows
            raise
        self._checked.update(marks)
        slot_rows, cabinet_rows = new_slots, new_cabinets
        written = len(slot_rows) + len(cabinet_rows)
        self.rows_written += written
        return written

    def prune(self, keep_days: int) -> int:
        """Delete changes older than ``keep_days``, except each slot's and cabinet's newest (its
        state now). Returns the rows deleted."""
        cutoff = self._clock() - timedelta(days=keep_days)
        s, c = slot_changes.c, cabinet_changes.c
        with self._engine.begin() as db:
            newest_slot = select(func.max(s.id)).group_by(s.site, s.cabinet, s.slot)
            gone = db.execute(delete(slot_changes).where(
                and_(s.at < cutoff, s.id.not_in(newest_slot)))).rowcount or 0
            newest_cabinet = select(func.max(c.id)).group_by(c.site, c.cabinet)
            gone += db.execute(delete(cabinet_changes).where(
                and_(c.at < cutoff, c.id.not_in(newest_cabinet)))).rowcount or 0
        return int(gone)
