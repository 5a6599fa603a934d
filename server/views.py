"""JSON shapes of the HTTP API, built from the collector's values (pure, no web framework)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from .alerts.model import Alert, AlertState
from .fleet import CabinetView
from .i18n import Language, alert_summary
from .ingest import MqttStats
from .pipeline import IngestStats
from .tsdb.base import SinkStats

__all__ = ["AlertFilter", "alerts_json", "fleet_json", "health_json", "stats_json"]

AlertFilter = Literal["all", "active", "firing", "pending", "resolved"]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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
            }
            for s in c.slots
        ],
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


def alerts_json(alerts: Iterable[Alert], now: datetime, wanted: AlertFilter,
                lang: Language) -> dict[str, Any]:
    items = []
    for alert in alerts:
        state = alert.state(now)
        if not _matches(state, wanted):
            continue
        items.append({
            "fingerprint": alert.fingerprint,
            "alertname": alert.name,
            "state": state.value,
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "summary": alert_summary(alert.labels, alert.annotations, lang),
            "active_at": _time(alert.active_at),
            "starts_at": _time(alert.starts_at),
            "ends_at": _time(alert.ends_at),
        })
    return {"generated_at": _time(now), "lang": lang, "alerts": items}


def stats_json(ingest: IngestStats, mqtt: MqttStats, tsdb: SinkStats,
               cabinets: int) -> dict[str, Any]:
    return {
        "received": ingest.received,
        "accepted": ingest.accepted,
        "rejected": dict(ingest.rejected),
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


def health_json(mqtt_connected: bool, tsdb: SinkStats) -> dict[str, Any]:
    return {"mqtt_connected": mqtt_connected, "tsdb": tsdb.health.value}
