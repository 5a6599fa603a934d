"""Alert quality over a school term: does the real classifier and rule engine tell the right
people about what really went wrong, soon enough, and nothing else?

    .venv/bin/python bench/alert_quality.py              # 138 cabinets, 10 weeks, 2 processes (< 3 min)
    .venv/bin/python bench/alert_quality.py --quick      # 30 cabinets, 2 weeks (a smoke test)

A district (``alert_quality_plan``: 138 cabinets in 23 schools and 10 municipalities; 60 %
power-only 8/16/32-slot cabinets, 30 % with presence inputs, 10 % with a door contact only; three
one-to-one pilot schools) lives through a term from Monday 2026-09-14: weekends, the Saarland autumn
break from the shipped calendar, and two days off of some schools' own (an ICS file). Children take
and return iPads (``SchoolDay``), some forget them at home; injected incidents: doors left open by
day and after hours, agents that stop (Last Will), dead meters, mains lost, heat, dead chargers,
too strong chargers, iPads brought back flat just before the morning check, batteries that never
get full or wear.

Per cabinet, ``alert_quality_sim.CabinetRun`` drives simulator physics → ``CabinetReading`` →
``CabinetClassifier`` → the agent's protocol messages; ``alert_quality_run`` folds them into a
``Fleet`` and ticks the real ``AlertEngine`` and ``Dispatcher`` (with a recording notifier) on a fake
clock; ``alert_quality_score`` compares the alerts with the ground truth. The schools are split over
``--processes`` processes, each with its own engine and dispatcher over whole schools (alerts,
groups and digests are per cabinet or school, so that is what one collector would do); the results
are merged.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alert_quality_plan import ZONE
from alert_quality_run import Options, run_part, world_for
from alert_quality_score import SCHOOL_DAY_RULES, score
from alert_quality_sim import STEP_CHARGING, STEP_EVENT, STEP_QUIET

ROOT = Path(__file__).resolve().parents[1]
QUICK = Options(weeks=2, cabinets=30, schools=6, municipalities=3)


def run(options: Options, processes: int = 2) -> dict[str, Any]:
    """Simulate, score, and describe the run (everything the JSON file holds)."""
    started = time.perf_counter()
    if processes > 1:
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with context.Pool(processes) as pool:
            parts = pool.starmap(run_part, [(options, k, processes) for k in range(processes)])
    else:
        parts = [run_part(options, 0, 1)]
    elapsed = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        world = world_for(options, Path(tmp))
        days = (world.end - world.start).days
        result = score(parts, world.start.timestamp(), world.end.timestamp(), world.calendars, days)
        kinds: dict[str, int] = {}
        for c in world.cabinets:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        result["setup"] = {
            "term": f"{world.start.astimezone(ZONE).date()} .. "
                    f"{(world.end.astimezone(ZONE) - timedelta(days=1)).date()} ({days} days, "
                    f"warm-up {world.warm_up.days} day not scored)",
            "cabinets": len(world.cabinets), "hardware": kinds,
            "schools": len(world.org.schools), "municipalities": len(world.org.municipalities),
            "one_to_one": [s.site for s in world.org.schools if s.policy.value == "one_to_one"],
            "own_days_off": world.days_off_sites, "incidents": len(world.incidents),
            "incidents_by_kind": _count(i.kind for i in world.incidents),
            "poll_steps_s": {"event": STEP_EVENT, "charging": STEP_CHARGING, "quiet": STEP_QUIET},
        }
    polls: dict[str, int] = {}
    for p in parts:
        for phase, n in p["polls_by_phase"].items():
            polls[phase] = polls.get(phase, 0) + n
    result["run"] = {
        "wall_s": round(elapsed, 1), "cpu_s_per_process": [round(p["cpu_s"], 1) for p in parts],
        "processes": processes, "polls": sum(p["polls"] for p in parts), "polls_by_phase": polls,
        "messages": sum(p["messages"] for p in parts), "engine_ticks": sum(p["ticks"] for p in parts),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Linux "
                   f"{platform.release()}, Python {platform.python_version()}",
        "load": Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "",
        "date": date.today().isoformat(),
    }
    return result


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def report(result: dict[str, Any]) -> str:
    setup, run_ = result["setup"], result["run"]
    lines = [
        f"term {setup['term']}; {setup['cabinets']} cabinets {setup['hardware']} in "
        f"{setup['schools']} schools, {setup['municipalities']} municipalities; "
        f"{setup['incidents']} incidents",
        f"run: {run_['wall_s']} s wall, CPU {run_['cpu_s_per_process']} s on {run_['processes']} "
        f"processes; {run_['polls']:,} polls {run_['polls_by_phase']}, {run_['messages']:,} messages, "
        f"{run_['engine_ticks']:,} engine ticks; {run_['machine']}, load {run_['load']}",
        "",
        f"{'rule':22} {'expected':>8} {'caught':>6} {'recall':>7} {'not knowable':>12} "
        f"{'tta p50':>8} {'tta p95':>8} {'pend+poll':>9} {'fired':>6} {'false':>5} {'/1000cd':>7}",
    ]
    for rule, row in result["rules"].items():
        recall = "-" if row["recall"] is None else f"{100 * row['recall']:.0f} %"
        lines.append(
            f"{rule:22} {row['expected']:8} {row['caught']:6} {recall:>7} {row['not_knowable']:12} "
            f"{_s(row['tta_median_s']):>8} {_s(row['tta_p95_s']):>8} "
            f"{_s(row['pending_plus_poll_s']):>9} {row['fired']:6} {row['false']:5} "
            f"{row['false_per_1000_cabinet_days']:7.2f}")
    notes = result["notifications"]
    lines += [
        "",
        f"false alerts: {result['false_total']} = {result['false_per_1000_cabinet_days']:.2f} per "
        f"1,000 cabinet-days ({result['cabinet_days']:,} cabinet-days; goal <= 1); "
        f"{result['warm_up_alerts']} alerts in the warm-up day not scored",
    ]
    for row in result["false_by_rule_reason_hardware"]:
        lines.append(f"  {row['count']:5}  {row['rule']:22} reason={row['reason']:14} "
                     f"hardware={row['hardware']}")
    lines.append("not knowable (by rule, hardware, why; [at the check shown as 'not confirmed since' / "
                 "'cannot tell'])")
    for row in result["not_knowable"]:
        shown = (f"  [{row['listed_not_confirmed']} / {row['shown_cannot_tell']}]"
                 if row["listed_not_confirmed"] or row["shown_cannot_tell"] else "")
        lines.append(f"  {row['count']:5}  {row['rule']:22} {row['hardware']:9} {row['why']}{shown}")
    lines.append(
        f"notifications: {notes['total']:,}; carrying {', '.join(SCHOOL_DAY_RULES)} on days "
        f"without school: {notes['school_day_rules_on_days_off']} (goal 0) "
        f"{notes['school_day_rules_on_days_off_by_name']}")
    for day, count in list(notes["school_day_rules_on_days_off_by_day"].items())[:15]:
        lines.append(f"  {count:5}  {day}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 weeks, 30 cabinets (smoke test)")
    parser.add_argument("--weeks", type=int)
    parser.add_argument("--cabinets", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "alert-quality.json",
                        help="where the result file goes")
    args = parser.parse_args()
    options = QUICK if args.quick else Options()
    changes: dict[str, Any] = {"seed": args.seed}
    if args.weeks:
        changes["weeks"] = args.weeks
    if args.cabinets:
        changes["cabinets"] = args.cabinets
    options = Options(**{**options.__dict__, **changes}) if hasattr(options, "__dict__") else \
        Options(**{f: getattr(options, f) for f in Options.__slots__} | changes)  # type: ignore[attr-defined]
    result = run(options, args.processes)
    print(report(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    print(f"result file: {args.json}")


if __name__ == "__main__":
    main()
