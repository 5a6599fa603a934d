"""School report queries at district and at national scale (issue 17): the time of one report, as
the dashboard asks for it (``ReportSource.report``: roll-ups checked, figures summed, batteries of
the schools' iPads ranked), over a store holding a school year of daily roll-ups.

    .venv/bin/python bench/report_query.py                  # both cases, side by side
    .venv/bin/python bench/report_query.py --big-days 2     # fewer days for the 80,000 cabinets

* **district**: 138 cabinets × 16 slots in 46 schools (the district of the brief), 365 days of
  daily roll-ups; reports for the whole district, for one municipality and for one school, over the
  school year.
* **national**: 80,000 cabinets × 16 slots in 26,667 schools with ``--big-days`` days of roll-ups
  (the table: 1.28 million rows a day), and one school with the full year; the report of that one
  school over the year.

The roll-ups are written straight into the store's tables (a year of recorded history would take
a year); everything read is read through the public report source. Each report is timed five
times (wall time; the machine is shared) and the median is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from server.battery import BatteryAgeing
from server.history.source import ReportSource
from server.inventory import Inventory
from server.org import Organisation
from server.schoolcal import Calendars
from server.store import open_store
from server.store.schema import daily_cabinets, daily_slots, rollup_days

SLOTS = 16
FIRST = date(2025, 8, 11)  # a school year in the Saarland
DAYS = 365
NOW = datetime(2026, 8, 11, 9, 0, tzinfo=UTC)
CHUNK = 50_000


def _org(cabinets: int, per_school: int, municipalities: int) -> Organisation:
    schools = (cabinets + per_school - 1) // per_school
    return Organisation.model_validate({
        "district": "Kreis", "state": "SL", "district_team": "it",
        "teams": [{"id": "it", "name": "IT"}],
        "municipalities": [{"id": f"m{m}", "name": f"Gemeinde {m}"} for m in range(municipalities)],
        "schools": [{"site": f"s{s}", "name": f"Schule {s}", "municipality": f"m{s % municipalities}"}
                    for s in range(schools)],
    })


def _rows(cabinets: range, per_school: int, days: int) -> Iterator[tuple[dict[str, Any], ...]]:
    """Per cabinet and day: its slots' roll-ups and its own; realistic values, deterministic."""
    for day_index in range(days):
        day = FIRST + timedelta(days=day_index)
        school_day = day.weekday() < 5
        for n in cabinets:
            site, cabinet = f"s{n // per_school}", f"k{n % per_school}"
            slots = tuple({"day": day, "site": site, "cabinet": cabinet, "slot": slot,
                           "asset_tag": f"T{n}-{slot}", "school_day": int(school_day),
                           "ready": (int((n + slot + day_index) % 9 != 0) if school_day else None),
                           "returned": (int((n * slot + day_index) % 23 != 0) if school_day else None),
                           "sessions": 1, "energy_wh": 18.5 + (slot % 5)}
                          for slot in range(1, SLOTS + 1))
            yield (*slots, {"day": day, "site": site, "cabinet": cabinet,
                            "online_s": 86_000.0 - (n % 7) * 300, "known_s": 86_400.0})


def _fill(engine: Engine, source: ReportSource, cabinets: range, per_school: int, days: int,
          sites: list[str]) -> int:
    slot_rows: list[dict[str, Any]] = []
    cabinet_rows: list[dict[str, Any]] = []
    written = 0

    def flush() -> None:
        nonlocal written
        with engine.begin() as db:
            if slot_rows:
                db.execute(insert(daily_slots), slot_rows)
            if cabinet_rows:
                db.execute(insert(daily_cabinets), cabinet_rows)
        written += len(slot_rows)
        slot_rows.clear()
        cabinet_rows.clear()

    for rows in _rows(cabinets, per_school, days):
        slot_rows.extend(rows[:-1])
        cabinet_rows.append(rows[-1])
        if len(slot_rows) >= CHUNK:
            flush()
    flush()
    dates = [FIRST + timedelta(days=d) for d in range(days)]
    source.rollups.summarise(sites, dates)  # what the nightly roll-up does after the slots
    with engine.begin() as db:  # these days are rolled up: the report must not redo them
        db.execute(insert(rollup_days).prefix_with("OR IGNORE"),
                   [{"day": FIRST + timedelta(days=d), "site": site, "computed_at": NOW}
                    for d in range(days) for site in sites])
    return written


def _source(engine: Engine, org: Organisation) -> ReportSource:
    calendars = Calendars(org.zone, org.state, [])
    return ReportSource(engine, org, calendars, BatteryAgeing(), Inventory(engine, lambda: NOW),
                        0.30, lambda: NOW)


def _median(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def district(tmp: Path) -> list[tuple[str, float, str]]:
    per_school, cabinets = 3, 138
    org = _org(cabinets, per_school, 8)
    engine = open_store(tmp / "district")
    sites = [s.site for s in org.schools]
    source = _source(engine, org)
    rows = _fill(engine, source, range(cabinets), per_school, DAYS, sites)
    last = FIRST + timedelta(days=DAYS - 1)
    municipality = [s.site for s in org.schools if s.municipality == "m0"]
    results = []
    for label, chosen in (("district (46 schools)", sites), ("one municipality", municipality),
                          ("one school", sites[:1])):
        report = source.report(chosen, FIRST, last)
        assert report.total.school_days > 200 and report.total.readiness is not None
        results.append((label, _median(lambda c=chosen: source.report(c, FIRST, last)),
                        f"{rows:,} slot-days in the store"))
    return results


def national(tmp: Path, big_days: int) -> list[tuple[str, float, str]]:
    per_school, cabinets = 3, 80_000
    org = _org(cabinets, per_school, 400)
    engine = open_store(tmp / "national")
    source = _source(engine, org)
    started = time.perf_counter()
    rows = _fill(engine, source, range(per_school, cabinets), per_school, big_days,
                 [s.site for s in org.schools[1:]])
    rows += _fill(engine, source, range(per_school), per_school, DAYS, ["s0"])  # the whole year
    filled = time.perf_counter() - started
    last = FIRST + timedelta(days=DAYS - 1)
    report = source.report(["s0"], FIRST, last)
    assert report.total.school_days > 200
    return [("one school of 26,667", _median(lambda: source.report(["s0"], FIRST, last)),
             f"{rows:,} slot-days in the store (filled in {filled:.0f} s)")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-days", type=int, default=3,
                        help="days of roll-ups for all 80,000 cabinets (1.28 M rows a day)")
    parser.add_argument("--only", choices=["district", "national"])
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite store; "
          "report over one school year (365 days), median of 5, wall time")
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        if args.only in (None, "district"):
            results += district(Path(tmp))
        if args.only in (None, "national"):
            results += national(Path(tmp), args.big_days)
    for label, seconds, note in results:
        print(f"{label:26} {seconds * 1000:8.0f} ms   {note}")


if __name__ == "__main__":
    main()
