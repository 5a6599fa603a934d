"""The inventory: one home for asset tags (issue 16, item 5). Its store (the schema the migrations
build, moves, all-or-nothing imports, another process's change noticed), an MDM's CSV as Jamf,
Relution or German Excel write it, and the collector's fleet following every change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cabinet_agent.common.protocol import AgentStatus, BirthMessage, SlotInfo, StatusMessage
from server.assets import AssetRegister
from server.inventory import Inventory, InventoryError, Place, report_lines
from server.inventory.mdm_csv import import_csv, parse_mdm_csv
from server.store.schema import metadata
from tests.support.store import new_store, store_at

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


pytestmark = pytest.mark.store


@pytest.fixture
def inventory() -> Inventory:
    return Inventory(new_store(), Clock())


def _where(inventory: Inventory) -> dict[str, tuple[str, str, int] | None]:
    return {i.asset_tag: (i.place.site, i.place.cabinet, i.place.slot) if i.place else None
            for i in inventory.ipads()}


# -- the store -----------------------------------------------------------------------------------

def test_the_migrations_build_exactly_the_schema(tmp_path: Path) -> None:
    engine = store_at(tmp_path)
    with engine.connect() as db:
        assert compare_metadata(MigrationContext.configure(db), metadata) == []
    store_at(tmp_path)  # a second start migrates nothing and fails on nothing


def test_an_ipad_moved_to_another_slot_keeps_its_identity(inventory: Inventory) -> None:
    inventory.save("GS-0001", "dmpx1a2b3c4d", "iPad 1", "import")
    inventory.place("GS-0001", Place("gs", "k1", 1), "tech")
    inventory.place("GS-0002", Place("gs", "k1", 2), "tech", create=True)
    moves = inventory.place("GS-0001", Place("gs", "k1", 2), "tech")  # slot 2's iPad is taken out
    assert [(m.asset_tag, m.before, m.after) for m in moves] == [
        ("GS-0002", Place("gs", "k1", 2), None),
        ("GS-0001", Place("gs", "k1", 1), Place("gs", "k1", 2))]
    assert _where(inventory) == {"GS-0001": ("gs", "k1", 2), "GS-0002": None}
    ipad = inventory.get("GS-0001")
    assert ipad is not None and (ipad.serial, ipad.name) == ("DMPX1A2B3C4D", "iPad 1")
    assert [m.after for m in inventory.moves("GS-0001")] == [Place("gs", "k1", 2), Place("gs", "k1", 1)]
    assert inventory.snapshot().by_cabinet == {("gs", "k1"): {2: "GS-0001"}}


def test_refused_values_name_the_culprit(inventory: Inventory) -> None:
    inventory.save("A-1", "SN1", None, "x")
    inventory.save("A-2", None, None, "x")
    for call, code in ((lambda: inventory.save("", None, None, "x"), "tag_invalid"),
                       (lambda: inventory.save("A-3", "not a serial!", None, "x"), "serial_invalid"),
                       (lambda: inventory.save("A-2", "SN1", None, "x"), "serial_taken"),
                       (lambda: inventory.save("A-2", None, None, "x", new_tag="A-1"), "tag_taken"),
                       (lambda: inventory.place("A-9", Place("gs", "k1", 1), "x"), "unknown_tag"),
                       (lambda: inventory.save("A-3", None, "x\x00y", "x"), "name_invalid")):
        with pytest.raises(InventoryError) as caught:
            call()
        assert caught.value.code == code
    assert _where(inventory) == {"A-1": None, "A-2": None}  # nothing half-done


def test_another_process_s_change_is_noticed(tmp_path: Path) -> None:
    collector = Inventory(store_at(tmp_path), Clock())
    seen: list[int] = []
    collector.listen(lambda before, after: seen.append(after.revision))
    cli = Inventory(store_at(tmp_path), Clock())
    cli.place("GS-7", Place("gs", "k1", 7), "cli", create=True)
    assert collector.snapshot().by_cabinet == {}
    assert collector.refresh() and collector.snapshot().by_cabinet == {("gs", "k1"): {7: "GS-7"}}
    assert not collector.refresh()  # nothing new: nothing re-read
    assert seen == [cli.snapshot().revision]


def test_the_config_fills_the_inventory_once_and_never_overrides_it(inventory: Inventory) -> None:
    slots = {("gs", "k1"): {1: "GS-1", 2: "GS-2"}}
    assert inventory.seed(slots, "server.toml") == 2
    inventory.place("GS-1", Place("gs", "k1", 3), "tech")  # moved by a technician
    assert inventory.seed(slots, "server.toml") == 0  # the next start: the inventory holds
    assert _where(inventory) == {"GS-1": ("gs", "k1", 3), "GS-2": ("gs", "k1", 2)}


def test_the_fleet_carries_the_inventory_s_tags_and_follows_a_move() -> None:
    inventory = Inventory(new_store(), Clock())
    inventory.seed({("gs", "k1"): {1: "GS-1"}}, "test")
    fleet = AssetRegister(inventory).fleet()
    env = {"v": 1, "site": "gs", "cabinet": "k1", "boot_id": "b" * 32, "ts": T0, "clock_synced": True}
    fleet.apply(StatusMessage(**env, seq=0, status=AgentStatus.ONLINE), T0)  # type: ignore[arg-type]
    fleet.apply(BirthMessage(**env, seq=1, agent_version="0.1", config_hash="00000000",  # type: ignore[arg-type]
                             cabinet_model="m", slot_count=2, poll_interval_s=1.0,
                             telemetry_interval_s=10.0,
                             slots=[SlotInfo(slot=1, asset_tag="CLAIMED"), SlotInfo(slot=2)]), T0)
    view = fleet.get("gs", "k1")
    assert view is not None and [s.asset_tag for s in view.slots] == ["GS-1", None]
    version = fleet.version
    inventory.place("GS-1", Place("gs", "k1", 2), "tech")
    version, changed = fleet.changed_since(version)
    assert [c.key for c in changed] == [("gs", "k1")]  # the alert rules look at it again
    assert [s.asset_tag for s in changed[0].slots] == [None, "GS-1"]


# -- an MDM's export -----------------------------------------------------------------------------

JAMF = (b"Display Name,Serial Number,Asset Tag,Model\r\n"
        b"Klasse 3a - 01,DMPXK1AAAAAA,GS-PARK-0001,iPad (9th generation)\r\n"
        b"Lehrer-iPad,DMPXK1BBBBBB,,iPad Air\r\n"
        b"Klasse 3a - 02,DMPXK1CCCCCC,GS-PARK-0002,iPad (9th generation)\r\n")
# German Excel: semicolons, Windows-1252 (the umlaut), no BOM
RELUTION = ("Gerätename;Seriennummer;Inventarnummer\n"
            "Klasse 3a – 01;DMPXK1AAAAAA;GS-PARK-0001\n"
            "Schüler 3;DMPXK1DDDDDD;GS-PARK-0003\n").encode("cp1252")


def test_a_jamf_export_and_a_german_excel_file_both_import(inventory: Inventory) -> None:
    report = import_csv(inventory, JAMF, "admin")
    assert (report.added, report.updated, report.skipped, report.errors) == (2, 0, 1, [])
    report = import_csv(inventory, RELUTION, "admin")
    assert (report.added, report.updated, report.unchanged) == (1, 1, 0)  # a new name for 0001
    first = inventory.get("GS-PARK-0001")
    assert first is not None and first.name == "Klasse 3a – 01" and first.serial == "DMPXK1AAAAAA"
    third = inventory.get("GS-PARK-0003")
    assert third is not None and third.name == "Schüler 3"
    assert report_lines(report) == ["1 neu, 1 geändert, 0 unverändert, 0 ohne Inventarnummer "
                                    "übersprungen."]


def test_a_file_with_any_conflict_imports_nothing_and_names_every_line(inventory: Inventory) -> None:
    inventory.save("GS-1", "SERIAL1", None, "admin")
    bad = (b"Serial Number,Asset Tag,Name\n"
           b"SERIAL2,GS-1,taken by another device\n"  # line 2: GS-1 is SERIAL1's
           b"SERIAL3,GS-3,fine\n"
           b"SERIAL3,GS-4,serial twice\n"  # line 4
           b"bad serial!,GS-5,x\n")  # line 5
    report = import_csv(inventory, bad, "admin")
    assert [(line, e.code) for line, e in report.errors] == [(5, "serial_invalid")]
    report = import_csv(inventory, bad.replace(b"bad serial!", b"SERIAL5"), "admin")
    assert [(line, e.code) for line, e in report.errors] == [(4, "serial_twice")]
    report = import_csv(inventory, bad.replace(b"bad serial!", b"SERIAL5")
                        .replace(b"SERIAL3,GS-4", b"SERIAL4,GS-4"), "admin")
    assert [(line, e.code) for line, e in report.errors] == [(2, "tag_taken")]
    assert report_lines(report, "en")[1] == \
        "Line 2: Asset tag “GS-1” belongs to another iPad already."
    assert [i.asset_tag for i in inventory.ipads()] == ["GS-1"]  # nothing of any of them


def test_a_dry_run_counts_and_saves_nothing(inventory: Inventory) -> None:
    report = import_csv(inventory, JAMF, "admin", dry_run=True)
    assert report.added == 2 and inventory.ipads() == []


@pytest.mark.parametrize(("data", "code"), [
    (b"", "file_empty"),
    (b"Name,Serial Number\nx,ABC\n", "no_tag_column"),
    (b"Asset Tag\n" + b"x" * (3 * 1024 * 1024), "file_too_large"),
])
def test_a_file_that_cannot_be_read_is_refused_with_why(data: bytes, code: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_mdm_csv(data)
    assert caught.value.code == code


def test_headers_in_any_case_with_a_bom() -> None:
    parsed = parse_mdm_csv("\ufeffINVENTARNR.;SERIENNUMMER\nA-1;dmpx 1\n".encode())
    assert [(r.line, r.asset_tag, r.serial) for r in parsed.rows] == [(2, "A-1", "DMPX1")]
