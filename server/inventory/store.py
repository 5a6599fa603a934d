"""The inventory in the store (``server/store``): reads return a ``Snapshot`` held in memory, every
write is one transaction that also raises the inventory's revision, so another process's copy
(``refresh``) notices it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, RowMapping, delete, insert, select, update

from ..store import open_store
from ..store.schema import ipad_moves, ipads, revisions
from .model import InventoryError, IPad, Move, Place, Snapshot, clean_name, clean_serial, clean_tag

__all__ = ["ImportReport", "ImportRow", "Inventory"]

KIND: Final = "inventory"


class _Rollback(Exception):
    """Leave the transaction without a change (a dry run, a conflict, nothing to do)."""
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int  # in the file, for the error message
    asset_tag: str
    serial: str | None
    name: str | None


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # rows without an asset tag (an MDM lists teachers' iPads too)
    errors: list[tuple[int, InventoryError]] = field(default_factory=list)  # (line, why)

    @property
    def ok(self) -> bool:
        return not self.errors


def _place(row: RowMapping) -> Place | None:
    if row["site"] is None:
        return None
    return Place(row["site"], row["cabinet"], row["slot"])


def _ipad(row: RowMapping) -> IPad:
    return IPad(row["asset_tag"], row["serial"], row["name"], _place(row), row["placed_at"],
                row["updated_at"], row["updated_by"])


def _where(place: Place | None) -> dict[str, Any]:
    if place is None:
        return {"site": None, "cabinet": None, "slot": None}
    return {"site": place.site, "cabinet": place.cabinet, "slot": place.slot}


class Inventory:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot = Snapshot(-1)
        self._listeners: list[Callable[[Snapshot, Snapshot], None]] = []
        self.refresh()

    def listen(self, listener: Callable[[Snapshot, Snapshot], None]) -> None:
        """Call ``listener(before, after)`` after every change (this process's or, on
        ``refresh``, another's); on the thread that made or noticed it."""
        self._listeners.append(listener)

    def _changed(self, before: Snapshot) -> None:
        after = self._snapshot
        if after.revision != before.revision:
            for listener in self._listeners:
                listener(before, after)

    @classmethod
    def in_memory(cls, clock: Clock) -> Inventory:
        return cls(open_store(None), clock)

    def close(self) -> None:
        self._engine.dispose()

    # -- reading ---------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def refresh(self) -> bool:
        """Read the inventory again if another process changed it; True when it did."""
        before = self._snapshot
        with self._lock, self._engine.connect() as db:
            revision = db.scalar(select(revisions.c.revision).where(revisions.c.kind == KIND)) or 0
            if revision == before.revision:
                return False
            self._load(db, revision)
        self._changed(before)
        return True

    def _load(self, db: Connection, revision: int) -> None:
        i = ipads.c
        by_cabinet: dict[tuple[str, str], dict[int, str]] = {}
        for site, cabinet, slot, tag in db.execute(
                select(i.site, i.cabinet, i.slot, i.asset_tag).where(i.site.is_not(None))):
            by_cabinet.setdefault((site, cabinet), {})[slot] = tag
        self._snapshot = Snapshot(revision, by_cabinet)

    def get(self, tag: str) -> IPad | None:
        """The iPad with this tag, as the inventory writes it (spacing does not count)."""
        try:
            tag = clean_tag(tag)
        except InventoryError:
            return None
        with self._engine.connect() as db:
            row = self._row(db, tag)
        return _ipad(row) if row is not None else None

    def ipads(self, sites: Iterable[str] | None = None, *, unplaced: bool = True,
              limit: int = 5000) -> list[IPad]:
        """The iPads placed in ``sites`` (all with None), and with ``unplaced`` those in no slot;
        by school, cabinet, slot, then asset tag."""
        i = ipads.c
        query = select(ipads)
        if sites is not None:
            placed = i.site.in_(list(sites))
            query = query.where(placed | i.site.is_(None) if unplaced else placed)
        elif not unplaced:
            query = query.where(i.site.is_not(None))
        query = query.order_by(i.site.is_(None), i.site, i.cabinet, i.slot, i.asset_tag).limit(limit)
        with self._engine.connect() as db:
            return [_ipad(row) for row in db.execute(query).mappings()]

    def moves(self, tag: str) -> list[Move]:
        """The iPad's changes of place, newest first."""
        m = ipad_moves.c
        query = (select(ipad_moves).join(ipads, ipads.c.id == m.ipad_id)
                 .where(ipads.c.asset_tag == tag).order_by(m.at.desc(), m.id.desc()))
        with self._engine.connect() as db:
            return [Move(tag, Place(r["from_site"], r["from_cabinet"], r["from_slot"])
                         if r["from_site"] else None,
                         Place(r["to_site"], r["to_cabinet"], r["to_slot"]) if r["to_site"] else None,
                         r["at"], r["by"]) for r in db.execute(query).mappings()]

    # -- writing ---------------------------------------------------------------------------
    def _write(self, change: Callable[[Connection, datetime], Any]) -> Any:
        """Run ``change`` in one transaction that raises the revision, then reload."""
        before = self._snapshot
        with self._lock, self._engine.begin() as db:
            now = self._clock()
            result = change(db, now)
            current = db.scalar(select(revisions.c.revision).where(revisions.c.kind == KIND))
            if current is None:
                db.execute(insert(revisions).values(kind=KIND, revision=1))
            else:
                db.execute(update(revisions).where(revisions.c.kind == KIND)
                           .values(revision=current + 1))
            self._load(db, (current or 0) + 1)
        self._changed(before)
        return result

    def _row(self, db: Connection, tag: str) -> RowMapping | None:
        return db.execute(select(ipads).where(ipads.c.asset_tag == tag)).mappings().first()

    def _move(self, db: Connection, row: RowMapping, to: Place | None, now: datetime,
              by: str) -> Move | None:
        before = _place(row)
        if before == to:
            return None
        db.execute(update(ipads).where(ipads.c.id == row["id"])
                   .values(**_where(to), placed_at=now if to else None, updated_at=now,
                           updated_by=by))
        db.execute(insert(ipad_moves).values(
            ipad_id=row["id"], from_site=before.site if before else None,
            from_cabinet=before.cabinet if before else None,
            from_slot=before.slot if before else None, to_site=to.site if to else None,
            to_cabinet=to.cabinet if to else None, to_slot=to.slot if to else None, at=now, by=by))
        return Move(row["asset_tag"], before, to, now, by)

    def place(self, tag: str, to: Place | None, by: str, *, create: bool = False) -> list[Move]:
        """Put the iPad in ``to`` (None: in no slot). The iPad that was there is taken out (it
        keeps its identity, without a place); with ``create`` an unknown tag is added first."""
        tag = clean_tag(tag)

        def change(db: Connection, now: datetime) -> list[Move]:
            row = self._row(db, tag)
            if row is None:
                if not create:
                    raise InventoryError("unknown_tag", tag)
                db.execute(insert(ipads).values(asset_tag=tag, updated_at=now, updated_by=by))
                row = self._row(db, tag)
                assert row is not None
            moves: list[Move] = []
            if to is not None:
                there = db.execute(select(ipads).where(
                    ipads.c.site == to.site, ipads.c.cabinet == to.cabinet,
                    ipads.c.slot == to.slot)).mappings().first()
                if there is not None and there["id"] != row["id"]:
                    moved = self._move(db, there, None, now, by)
                    moves += [moved] if moved else []
            moved = self._move(db, row, to, now, by)
            return moves + ([moved] if moved else [])

        return list(self._write(change))

    def save(self, tag: str, serial: object, name: object, by: str, *,
             new_tag: str | None = None) -> IPad:
        """Create the iPad or change its serial, name or (``new_tag``) asset tag."""
        tag, serial, name = clean_tag(tag), clean_serial(serial), clean_name(name)
        target = clean_tag(new_tag) if new_tag is not None else tag

        def change(db: Connection, now: datetime) -> None:
            row = self._row(db, tag)
            if target != tag and self._row(db, target) is not None:
                raise InventoryError("tag_taken", target)
            if serial is not None:
                owner = db.execute(select(ipads.c.asset_tag).where(ipads.c.serial == serial)).scalar()
                if owner is not None and owner != tag:
                    raise InventoryError("serial_taken", serial)
            values = {"asset_tag": target, "serial": serial, "name": name, "updated_at": now,
                      "updated_by": by}
            if row is None:
                db.execute(insert(ipads).values(**values))
            else:
                db.execute(update(ipads).where(ipads.c.id == row["id"]).values(**values))

        self._write(change)
        ipad = self.get(target)
        assert ipad is not None
        return ipad

    def delete(self, tag: str) -> bool:
        def change(db: Connection, _now: datetime) -> bool:
            return bool(db.execute(delete(ipads).where(ipads.c.asset_tag == tag)).rowcount)

        return bool(self._write(change))

    def import_rows(self, rows: Iterable[ImportRow], by: str, *, dry_run: bool = False,
                    skipped: int = 0) -> ImportReport:
        """Add or update the iPads of an MDM export: matched by serial, else by asset tag. All or
        nothing: on any conflict nothing changes and the report lists every conflicting line.
        iPads missing from the file stay (an export may cover one school only)."""
        rows = list(rows)
        report = ImportReport(skipped=skipped)
        seen_tags: dict[str, int] = {}
        seen_serials: dict[str, int] = {}
        for row in rows:
            if row.asset_tag in seen_tags:
                report.errors.append((row.line, InventoryError("tag_twice", row.asset_tag)))
            seen_tags.setdefault(row.asset_tag, row.line)
            if row.serial is not None:
                if row.serial in seen_serials:
                    report.errors.append((row.line, InventoryError("serial_twice", row.serial)))
                seen_serials.setdefault(row.serial, row.line)
        if report.errors:
            return report

        def change(db: Connection, now: datetime) -> None:
            current = {r["asset_tag"]: r for r in db.execute(select(ipads)).mappings()}
            by_serial = {r["serial"]: r for r in current.values() if r["serial"]}
            for row in rows:
                self._import_one(db, row, current, by_serial, report, now, by)
            if report.errors or dry_run:
                raise _Rollback

        with contextlib.suppress(_Rollback):  # rolled back: a dry run, or a conflict somewhere
            self._write(change)
        return report

    def _import_one(self, db: Connection, row: ImportRow, current: Mapping[str, RowMapping],
                    by_serial: Mapping[str, RowMapping], report: ImportReport, now: datetime,
                    by: str) -> None:
        by_tag = current.get(row.asset_tag)
        by_sn = by_serial.get(row.serial) if row.serial else None
        if by_tag is not None and by_sn is not None and by_tag["id"] != by_sn["id"]:
            report.errors.append((row.line, InventoryError("tag_taken", row.asset_tag)))
            return
        if by_sn is None and by_tag is not None and by_tag["serial"] and row.serial \
                and by_tag["serial"] != row.serial:
            report.errors.append((row.line, InventoryError("tag_taken", row.asset_tag)))
            return
        existing = by_sn if by_sn is not None else by_tag
        if existing is None:
            db.execute(insert(ipads).values(asset_tag=row.asset_tag, serial=row.serial,
                                            name=row.name, updated_at=now, updated_by=by))
            report.added += 1
            return
        values = {"asset_tag": row.asset_tag, "serial": row.serial or existing["serial"],
                  "name": row.name or existing["name"]}
        if all(existing[k] == v for k, v in values.items()):
            report.unchanged += 1
            return
        db.execute(update(ipads).where(ipads.c.id == existing["id"])
                   .values(**values, updated_at=now, updated_by=by))
        report.updated += 1

    def seed(self, slots: Mapping[tuple[str, str], Mapping[int, str]], by: str) -> int:
        """Take asset tags from the organisation config (``[[cabinets]] slots``) once: a tag the
        inventory knows, or a slot that holds an iPad already, is left as the inventory has it
        (the inventory is the home of tags; the config only fills an empty one)."""

        def change(db: Connection, now: datetime) -> int:
            known = set(db.scalars(select(ipads.c.asset_tag)))
            i = ipads.c
            held = {(site, cabinet, slot) for site, cabinet, slot in db.execute(
                select(i.site, i.cabinet, i.slot).where(i.site.is_not(None)))}
            todo: dict[str, dict[str, Any]] = {}
            for (site, cabinet), tags in slots.items():
                for slot, raw in tags.items():
                    tag = clean_tag(raw)
                    if tag in known or tag in todo or (site, cabinet, slot) in held:
                        continue  # a tag given twice: its first slot
                    todo[tag] = {"asset_tag": tag, "site": site, "cabinet": cabinet, "slot": slot,
                                 "placed_at": now, "updated_at": now, "updated_by": by}
            if not todo:
                raise _Rollback  # nothing new: no write, the revision stays
            db.execute(insert(ipads), list(todo.values()))
            return len(todo)

        if not any(slots.values()):
            return 0
        try:
            return int(self._write(change))
        except _Rollback:
            return 0
