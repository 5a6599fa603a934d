"""``cabinet-server inventory``: import an MDM export, list the iPads. Works on the store in the
``[state] dir`` while the collector runs (it notices within seconds: ``Collector.follow_inventory``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ..clock import utcnow
from ..config import ServerSettings, store_location
from ..errors import EXIT_CONFIG, EXIT_RUNTIME
from ..i18n import DEFAULT_LANGUAGE, LANGUAGES
from ..store import open_store
from .mdm_csv import import_csv
from .model import InventoryError
from .report import error_text, report_lines
from .store import Inventory

__all__ = ["add_inventory_commands", "run_inventory_command"]

EXIT_REFUSED = 1  # the file had errors: nothing was imported


def add_inventory_commands(commands: Any) -> None:
    inventory = commands.add_parser(
        "inventory", help="the iPads' asset tags: import an MDM export (CSV), list them")
    sub = inventory.add_subparsers(dest="inventory_command", required=True)
    load = sub.add_parser("import", help="add or update iPads from an MDM's CSV export (serial, "
                          "asset tag, name); all or nothing")
    load.add_argument("file", type=Path, help="the CSV file (Jamf, Relution, Mosyle, Intune …)")
    load.add_argument("--dry-run", action="store_true", help="check and count, save nothing")
    listing = sub.add_parser("list", help="every iPad, with its place (tab-separated)")
    listing.add_argument("--school", help="only the iPads placed at this school (site id)")
    for cmd in (load, listing):
        cmd.add_argument("--config", type=Path, default=None, help="the server's TOML config")
        cmd.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE,
                         help="language of the messages (default: de)")


def _open(settings: ServerSettings, err: TextIO) -> Inventory | None:
    if settings.state.dir is None and settings.state.url is None:
        print("cabinet-server inventory: config error: state.dir: not set, so the inventory "
              "lives only in the running collector's memory; set [state] dir (or [state] url)",
              file=err)
        return None
    return Inventory(open_store(store_location(settings)), utcnow)


def run_inventory_command(args: argparse.Namespace, settings: ServerSettings,
                          out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    inventory = _open(settings, err)
    if inventory is None:
        return EXIT_CONFIG
    try:
        if args.inventory_command == "import":
            try:
                data = args.file.read_bytes()
            except OSError as exc:
                print(f"cabinet-server inventory: {args.file}: {exc.strerror}", file=err)
                return EXIT_RUNTIME
            try:
                report = import_csv(inventory, data, "cli", dry_run=args.dry_run)
            except InventoryError as exc:
                print(f"cabinet-server inventory: {args.file}: {error_text(exc, args.lang)}",
                      file=err)
                return EXIT_REFUSED
            lines = report_lines(report, args.lang, dry_run=args.dry_run)
            print("\n".join(lines), file=err if report.errors else out)
            return EXIT_REFUSED if report.errors else 0
        for ipad in inventory.ipads([args.school] if args.school else None,
                                    unplaced=not args.school, limit=10**7):
            place = ipad.place
            where = f"{place.site}\t{place.cabinet}\t{place.slot}" if place else "\t\t"
            print(f"{ipad.asset_tag}\t{ipad.serial or ''}\t{ipad.name or ''}\t{where}", file=out)
        return 0
    finally:
        inventory.close()
