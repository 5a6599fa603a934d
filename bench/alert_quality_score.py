"""Scoring of the alert-quality benchmark: recall, time to alert, false alerts, notifications on
days without school. The definitions are in docs/benchmarks.md ("Alert quality over a school term").

* An alert *fired* when it was firing for a moment: ``ends_at`` is None or after ``starts_at``.
* An expectation is *caught* when a fired alert with the same rule, site, cabinet and slot (or
  device) is firing at some moment from ``knowable`` to max(its end, knowable + pending + one poll).
  Time to alert = the alert's start (or ``knowable``, if it was firing already) − ``knowable``.
* A fired alert that catches no expectation is *true* when its ground-truth condition held for
  its labels within one quiet poll of its active time; otherwise it is *false*.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from alert_quality_plan import ZONE
from alert_quality_sim import STEP_CHARGING, STEP_EVENT, STEP_QUIET

from server.alerts.cadence import CADENCES, Cadence
from server.alerts.rules import CabinetOffline, RulesSettings, build_rules
from server.schoolcal import Calendars

__all__ = ["RULE_FAMILIES", "SCHOOL_DAY_RULES", "pending_by_rule", "score"]

# The rules bound to the school day, as the dispatcher knows them.
SCHOOL_DAY_RULES = tuple(sorted(name for name, cadence in CADENCES.items()
                               if cadence is Cadence.SCHOOL_DAY))
# Ground-truth interval families that make a rule's alert true (bench/alert_quality_truth.py,
# bench/alert_quality_incidents.py).
RULE_FAMILIES: dict[str, tuple[str, ...]] = {
    "door_open": ("door_long",),
    "door_open_after_hours": ("door",),
    "cabinet_offline": ("offline",),
    "device_fault": ("device",),
    "mains_lost": ("mains",),
    "over_temperature": ("hot",),
    "temperature_rise": ("hot",),
    "slot_overpower": ("overpower",),
    "charging_too_long": ("too_long",),
    "ipad_not_charging": ("broken_idle", "broken", "overpower", "too_long"),
    "ipad_not_charged": ("not_charged", "too_long"),
    "ipad_not_returned": ("not_returned", "broken"),
    "battery_worn": ("worn",),
}
# "One poll" by the phase in which a rule's condition becomes knowable.
POLL_BY_RULE = {"charging_too_long": STEP_CHARGING, "battery_worn": STEP_CHARGING + STEP_EVENT}
SLACK_S = STEP_QUIET


def pending_by_rule() -> dict[str, float]:
    offline = CabinetOffline(pending_s=120, silence_factor=3, min_silence_s=30)
    return {rule.name: rule.pending.total_seconds() for rule in build_rules(RulesSettings(), offline)}


def _sub(labels: dict[str, str]) -> str:
    return labels.get("slot") or labels.get("device") or ""


def _fired(alert: dict[str, Any]) -> bool:
    return alert["ends_at"] is None or alert["ends_at"] > alert["starts_at"]


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def score(parts: list[dict[str, Any]], start: float, end: float, calendars: Calendars,
          days: int) -> dict[str, Any]:
    pending = pending_by_rule()
    alerts = [a for p in parts for a in p["alerts"] if _fired(a)]
    warm_up = [a for a in alerts if a["active_at"] < start]
    alerts = [a for a in alerts if a["active_at"] >= start]
    hardware = {(c[0], c[1]): c[2] for p in parts for c in p["cabinets"]}
    intervals: dict[tuple[str, str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for p in parts:
        for family, site, cabinet, sub, spans in p["intervals"]:
            for s, e in spans:
                span = (s, e if e is not None else end)
                intervals[(family, site, cabinet, sub)].append(span)
                if family == "door" and span[1] - span[0] >= pending["door_open"] - STEP_EVENT:
                    intervals[("door_long", site, cabinet, sub)].append(span)
    by_key: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    for n, a in enumerate(alerts):
        labels = a["labels"]
        by_key[(labels["alertname"], labels["site"], labels["cabinet"], _sub(labels))].append(n)

    rules = sorted(set(pending) - {"battery_worn"} | {"battery_worn"})
    table: dict[str, dict[str, Any]] = {r: {"expected": 0, "caught": 0, "not_knowable": 0, "tta": [],
                                            "false": 0, "fired": 0, "missed": []} for r in rules}
    matched: set[int] = set()
    not_knowable: Counter[tuple[str, str, str]] = Counter()
    listed: Counter[tuple[str, str, str]] = Counter()  # of those, shown as "not confirmed since"
    unjudged: Counter[tuple[str, str, str]] = Counter()  # … or as "cannot tell"
    for p in parts:
        for e in p["expectations"]:
            if e["start"] < start or e["start"] >= end:
                continue
            row = table[e["rule"]]
            if e["knowable"] is None:
                row["not_knowable"] += 1
                not_knowable[(e["rule"], e["hardware"], e["why_not"])] += 1
                listed[(e["rule"], e["hardware"], e["why_not"])] += bool(e.get("listed"))
                unjudged[(e["rule"], e["hardware"], e["why_not"])] += bool(e.get("unjudged"))
                continue
            row["expected"] += 1
            know = e["knowable"]
            allowance = pending[e["rule"]] + POLL_BY_RULE.get(e["rule"], STEP_EVENT)
            deadline = max(e["end"], know + allowance)
            best: float | None = None
            for n in by_key.get((e["rule"], e["site"], e["cabinet"], e["sub"]), ()):
                a = alerts[n]
                ends = a["ends_at"] if a["ends_at"] is not None else end
                if a["starts_at"] <= deadline and ends > know:
                    matched.add(n)
                    lag = max(0.0, a["starts_at"] - know)
                    best = lag if best is None else min(best, lag)
            if best is not None:
                row["caught"] += 1
                row["tta"].append(best)
            else:
                row["missed"].append({"site": e["site"], "cabinet": e["cabinet"], "sub": e["sub"],
                                      "origin": e["origin"], "hardware": e["hardware"],
                                      "knowable": _iso(know)})

    false_detail: Counter[tuple[str, str, str]] = Counter()
    false_list: list[dict[str, Any]] = []
    for n, a in enumerate(alerts):
        labels = a["labels"]
        rule = labels["alertname"]
        table[rule]["fired"] += 1
        if n in matched:
            continue
        site, cabinet, sub = labels["site"], labels["cabinet"], _sub(labels)
        lo = a["active_at"] - SLACK_S
        hi = (a["ends_at"] if a["ends_at"] is not None else end) + SLACK_S
        true = any(s < hi and e > lo for family in RULE_FAMILIES.get(rule, ())
                   for s, e in intervals.get((family, site, cabinet, sub), ()))
        if true:
            continue
        table[rule]["false"] += 1
        ann = a["annotations"]
        reason = ann.get("reason") or ann.get("state") or ann.get("error") or ann.get("fault") or "-"
        kind = hardware.get((site, cabinet), "?")
        false_detail[(rule, reason, kind)] += 1
        false_list.append({"rule": rule, "reason": reason, "hardware": kind, "site": site,
                           "cabinet": cabinet, "sub": sub, "active_at": _iso(a["active_at"]),
                           "starts_at": _iso(a["starts_at"]),
                           "ends_at": _iso(a["ends_at"]) if a["ends_at"] else None,
                           "annotations": ann})

    cabinet_days = len(hardware) * days
    notes = _notifications(parts, calendars, start, end)
    rows = {}
    for rule in rules:
        row = table[rule]
        tta = row.pop("tta")
        rows[rule] = {
            **row, "missed": row["missed"][:20], "missed_total": len(row["missed"]),
            "recall": row["caught"] / row["expected"] if row["expected"] else None,
            "tta_median_s": statistics.median(tta) if tta else None, "tta_p95_s": _pct(tta, 95),
            "pending_plus_poll_s": pending[rule] + POLL_BY_RULE.get(rule, STEP_EVENT),
            "false_per_1000_cabinet_days": 1000 * row["false"] / cabinet_days,
        }
    total_false = sum(r["false"] for r in rows.values())
    return {
        "rules": rows, "cabinet_days": cabinet_days, "cabinets": len(hardware),
        "false_total": total_false, "false_per_1000_cabinet_days": 1000 * total_false / cabinet_days,
        "false_by_rule_reason_hardware": [
            {"rule": r, "reason": why, "hardware": k, "count": c}
            for (r, why, k), c in false_detail.most_common()],
        "false_alerts": false_list[:300],
        "not_knowable": [{"rule": r, "hardware": k, "why": why, "count": c,
                          "listed_not_confirmed": listed[(r, k, why)],
                          "shown_cannot_tell": unjudged[(r, k, why)]}
                         for (r, k, why), c in not_knowable.most_common()],
        "warm_up_alerts": len(warm_up),
        "notifications": notes,
    }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).astimezone(ZONE).isoformat(timespec="minutes")


def _notifications(parts: list[dict[str, Any]], calendars: Calendars, start: float,
                   end: float) -> dict[str, Any]:
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    off_days: Counter[str] = Counter()
    off_names: Counter[str] = Counter()
    total = 0
    for p in parts:
        for note in p["notifications"]:
            if not start <= note["at"] < end:
                continue
            total += 1
            local = datetime.fromtimestamp(note["at"], UTC).astimezone(ZONE)
            day = local.date()
            names = {name for name, _ in note["alerts"]}
            per_day[day.isoformat()][note["kind"]] += 1
            for name in names:
                per_day[day.isoformat()][name] += 1
            why = calendars.for_site(note["site"]).no_school_reason(day)
            school_day = [n for n in names if n in SCHOOL_DAY_RULES]
            if why is not None and school_day:
                off_days[f"{day.isoformat()} ({why})"] += 1
                off_names.update(school_day)
    return {"total": total, "school_day_rules_on_days_off": sum(off_days.values()),
            "school_day_rules_on_days_off_by_day": dict(sorted(off_days.items())),
            "school_day_rules_on_days_off_by_name": dict(off_names),
            "per_local_date": {d: dict(c) for d, c in sorted(per_day.items())}}
