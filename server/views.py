"""JSON shapes of the HTTP API, built from the collector's values (pure, no web framework).

Each shape is published as a pydantic model in ``server/api_models.py``; the routes check every
answer against it, so a key added here must be added there too (or the answer is a 500)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, Final, Literal

from cabinet_agent.common.protocol import Sensing

from .alerts.model import AlertState
from .alerts.silence import Silence
from .alerts.status import AlertStatus
from .alerts.store import Ack
from .fleet import CabinetView
from .i18n import Language, alert_summary
from .ingest import MqttStats
from .integrity import CabinetIntegrity
from .org import Organisation
from .pipeline import IngestStats
from .tsdb.base import SinkStats

__all__ = ["DEFAULT_INTEGRITY_LIMIT", "MAX_INTEGRITY_LIMIT", "AlertFilter", "IntegrityListing",
           "ack_json", "alerts_json", "fleet_json", "has_problem", "health_json",
           "integrity_summary_json", "sensing_json", "silence_json", "stats_json"]

AlertFilter = Literal["all", "active", "firing", "pending", "resolved"]
IntegrityListing = Literal["problems", "all", "none"]
DEFAULT_INTEGRITY_LIMIT: Final = 100
MAX_INTEGRITY_LIMIT: Final = 100_000


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def integrity_json(i: CabinetIntegrity) -> dict[str, Any]:
    """Delivery counters of one cabinet (docs/reliability.md)."""
    return {"seq_gaps": i.gaps, "duplicates": i.duplicates, "replayed": i.replayed,
            "clock_skewed": i.skewed, "clock_skew_s": i.last_skew_s, "clock_unsynced": i.unsynced,
            "outbox_dropped": i.outbox_dropped, "rejected": i.rejected,
            "last_rejected": i.last_rejected, "out_of_window": i.out_of_window,
            "events_lost": i.events_lost,
            "events_lost_at": i.events_lost_at.isoformat() if i.events_lost_at else None}


def sensing_json(sensing: Sensing | None) -> dict[str, Any] | None:
    """What the cabinet's hardware observes (birth, revision 2); null from older agents."""
    if sensing is None:
        return None
    return {"slot_power": sensing.slot_power, "presence": sensing.presence, "door": sensing.door,
            "evidence_window_s": sensing.evidence_window_s}


def cabinet_json(c: CabinetView) -> dict[str, Any]:
    return {
        "site": c.site,
        "cabinet": c.cabinet,
        "status": c.status.value,
        "status_reason": c.status_reason,
        "status_since": _time(c.status_since),
        "first_seen_at": _time(c.first_seen_at),
        "last_seen_at": _time(c.last_seen_at),
        "last_message_ts": _time(c.last_message_ts),
        "boot_id": c.boot_id,
        "agent_version": c.agent_version,
        "model": c.model,
        "config_hash": c.config_hash,
        "slot_count": c.slot_count,
        "telemetry_interval_s": c.telemetry_interval_s,
        "poll_interval_s": c.poll_interval_s,
        "door": c.door.value,
        "mains": c.mains.value,
        "temperature_c": c.temperature_c,
        "devices": [{"name": d.name, "ok": d.ok, "error": d.error} for d in c.devices],
        "slots": [
            {
                "slot": s.slot,
                "asset_tag": s.asset_tag,
                "state": s.state.value,
                "power_w": s.power_w,
                "since": _time(s.since),
                # Protocol revision 2; null from older agents (docs/classification.md)
                "certainty": s.certainty.value if s.certainty is not None else None,
                "last_draw_at": _time(s.last_draw_at),
                "unseen_since": _time(s.unseen_since),
            }
            for s in c.slots
        ],
        "sensing": sensing_json(c.sensing),
        "integrity": integrity_json(c.integrity),
        "stale_messages": c.stale,
        "boot_changes": [
            {
                "previous_boot_id": b.previous_boot_id,
                "boot_id": b.boot_id,
                "seen_at": _time(b.seen_at),
                "after_offline": b.after_offline,
                "offline_since": _time(b.offline_since),
            }
            for b in c.boot_changes
        ],
    }


def fleet_json(cabinets: Sequence[CabinetView], now: datetime) -> dict[str, Any]:
    return {"generated_at": _time(now), "cabinets": [cabinet_json(c) for c in cabinets]}


def _matches(state: AlertState, wanted: AlertFilter) -> bool:
    if wanted == "all":
        return True
    if wanted == "active":
        return state is not AlertState.RESOLVED
    return state.value == wanted


def ack_json(ack: Ack | None) -> dict[str, Any] | None:
    if ack is None:
        return None
    return {"by": ack.by, "comment": ack.comment, "at": _time(ack.at)}


def alerts_json(statuses: Iterable[AlertStatus], now: datetime, wanted: AlertFilter,
                lang: Language, org: Organisation | None = None) -> dict[str, Any]:
    """``group``: alerts are grouped per cabinet (``site/cabinet``) for notifications; with
    ``org``, summaries name the school, cabinet and asset tag."""
    items = []
    for status in statuses:
        alert, state = status.alert, status.state
        if not _matches(state, wanted):
            continue
        site, cabinet = alert.cabinet_key
        items.append({
            "fingerprint": alert.fingerprint,
            "alertname": alert.name,
            "state": state.value,
            "severity": alert.severity,
            "group": f"{site}/{cabinet}",
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "summary": alert_summary(alert.labels, alert.annotations, lang, org),
            "active_at": _time(alert.active_at),
            "starts_at": _time(alert.starts_at),
            "ends_at": _time(alert.ends_at),
            "acknowledged": status.ack is not None,
            "ack": ack_json(status.ack),
            "silenced": bool(status.silenced_by),
            "silenced_by": list(status.silenced_by),
            "inhibited": status.inhibited_by is not None,
            "inhibited_by": status.inhibited_by,
        })
    return {"generated_at": _time(now), "lang": lang, "alerts": items}


def silence_json(silence: Silence, now: datetime) -> dict[str, Any]:
    weekly = silence.weekly
    return {
        "id": silence.id,
        "kind": silence.kind.value,
        "matchers": dict(silence.matchers),
        "starts_at": _time(silence.starts_at),
        "ends_at": _time(silence.ends_at),
        "created_by": silence.created_by,
        "comment": silence.comment,
        "created_at": _time(silence.created_at),
        "weekly": None if weekly is None else {
            "days": sorted(weekly.days), "start": weekly.start.isoformat("minutes"),
            "end": weekly.end.isoformat("minutes"), "timezone": weekly.timezone},
        "active": silence.active(now),
        "expired": silence.expired(now),
    }


def has_problem(i: CabinetIntegrity) -> bool:
    """Gaps, duplicates, a skewed or unsynchronised clock, messages the agent's outbox dropped,
    messages refused or out of the time window, events lost. (Replays alone are the outbox doing
    its job.)"""
    return bool(i.gaps or i.duplicates or i.skewed or i.unsynced or i.outbox_dropped
                or i.rejected or i.out_of_window or i.events_lost)


def _total(values: Sequence[CabinetIntegrity], name: str) -> int:
    return sum(filter(None, map(attrgetter(name), values)))


def integrity_summary_json(per_cabinet: Mapping[str, CabinetIntegrity],
                           sites: frozenset[str] | None, listing: IntegrityListing,
                           limit: int) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(the cabinets listed, the summary). Totals are over every cabinet in scope (``sites``;
    None = all); listed are, in ``site/cabinet`` order and at most ``limit``, the cabinets with a
    problem (``has_problem``), every cabinet (``all``), or none. The per-cabinet counters are also
    in ``/api/fleet`` and ``/api/cabinets/{site}/{cabinet}``."""
    if sites is None:
        keys, values = list(per_cabinet), list(per_cabinet.values())
    else:
        keys, values = [], []
        for key, value in per_cabinet.items():
            if key.partition("/")[0] in sites:
                keys.append(key)
                values.append(value)
    problems = [k for k, i in enumerate(values) if has_problem(i)]
    wanted: Sequence[int] = (problems if listing == "problems"
                             else range(len(values)) if listing == "all" else ())
    listed = {keys[k]: integrity_json(values[k]) for k in wanted[:limit]}
    summary = {
        "cabinets": len(values),
        "with_problems": len(problems),
        "listing": listing,
        "limit": limit,
        "listed": len(listed),
        "truncated": len(wanted) > len(listed),
        "totals": {"seq_gaps": _total(values, "gaps"), "duplicates": _total(values, "duplicates"),
                   "replayed": _total(values, "replayed"), "clock_skewed": _total(values, "skewed"),
                   "clock_unsynced": _total(values, "unsynced"),
                   "outbox_dropped": _total(values, "outbox_dropped"),
                   "rejected": _total(values, "rejected"),
                   "out_of_window": _total(values, "out_of_window"),
                   "events_lost": _total(values, "events_lost")},
    }
    return listed, summary


def stats_json(ingest: IngestStats, mqtt: MqttStats, tsdb: SinkStats, cabinets: int,
               sites: frozenset[str] | None = None, listing: IntegrityListing = "problems",
               limit: int = DEFAULT_INTEGRITY_LIMIT) -> dict[str, Any]:
    """``integrity``: per ``site/cabinet``, bounded (``integrity_summary_json``); at 80,000
    cabinets the full map took 14 s to serve (docs/benchmarks.md)."""
    listed, summary = integrity_summary_json(ingest.integrity, sites, listing, limit)
    return {
        "received": ingest.received,
        "accepted": ingest.accepted,
        "rejected": dict(ingest.rejected),
        "duplicates": ingest.duplicates,
        "events_stored": ingest.events_stored,
        "integrity": listed,
        "integrity_summary": summary,
        "cabinets": cabinets,
        "mqtt": {
            "connected": mqtt.connected,
            "connects": mqtt.connects,
            "connection_losses": mqtt.connection_losses,
            "last_error": mqtt.last_error,
        },
        "tsdb": {
            "health": tsdb.health.value,
            "written": tsdb.written,
            "dropped": tsdb.dropped,
            "errors": tsdb.errors,
            "buffered": tsdb.buffered,
            "last_error": tsdb.last_error,
        },
    }


def health_json(mqtt_connected: bool, tsdb: SinkStats, leading: bool | None = None) -> dict[str, Any]:
    """``leading``: whether this collector leads now (server/leader.py; the log names the node)."""
    health: dict[str, Any] = {"mqtt_connected": mqtt_connected, "tsdb": tsdb.health.value}
    if leading is not None:
        health["leading"] = leading
    return health
