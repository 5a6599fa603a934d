"""``cabinet-server history backfill``: the durable history from before it existed, from the
collector's event log in the store (``backfill.py``; an older installation's ``events.sqlite`` is
taken over first, as the collector would at its start). Safe while the collector runs, and to run
twice."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ..clock import utcnow
from ..config import ServerSettings, resolve_path, store_location
from ..errors import EXIT_CONFIG
from ..events import take_over_events
from ..formatting import date_time
from ..inventory import Inventory
from ..store import open_store
from .backfill import backfill_from_events

__all__ = ["add_history_commands", "run_history_command"]


def add_history_commands(commands: Any) -> None:
    history = commands.add_parser("history", help="the durable history of slots and cabinets")
    sub = history.add_subparsers(dest="history_command", required=True)
    backfill = sub.add_parser("backfill", help="fill the history from before it existed, from "
                              "the collector's event log; adds only what is older than it has")
    backfill.add_argument("--config", type=Path, default=None, help="the server's TOML config")


def run_history_command(args: argparse.Namespace, settings: ServerSettings,
                        out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    if settings.state.dir is None and settings.state.url is None:
        print("cabinet-server history: config error: state.dir: not set: there is no event log "
              "and no store to fill; set [state] dir (or [state] url)", file=err)
        return EXIT_CONFIG
    engine = open_store(store_location(settings))
    try:
        if settings.state.dir is not None:  # where an older collector kept its events.sqlite
            take_over_events(engine, resolve_path(settings, settings.state.dir))
        inventory = Inventory(engine, utcnow)
        zone = settings.organisation.zone
        report = backfill_from_events(
            engine, lambda site, cabinet: inventory.snapshot().by_cabinet.get((site, cabinet), {}),
            lambda at: at.astimezone(zone).date())
    finally:
        engine.dispose()
    span = ""
    if report.first is not None and report.last is not None:
        span = (f" from {date_time(report.first, zone, 'en')} to "
                f"{date_time(report.last, zone, 'en')}")
    print(f"history backfilled{span}: {report.slot_rows} slot change(s), {report.cabinet_rows} "
          f"door/mains change(s); {report.skipped} event(s) not taken (newer than the history, "
          "or not a state)", file=out)
    return 0
