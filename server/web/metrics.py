"""``/metrics`` in the Prometheus text format (0.0.4), written by hand: a dozen lines, no
dependency. Aggregates only (no school or cabinet names), so it needs no login, like /healthz."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from ..alerts.status import alert_statuses
from ..tsdb.base import SinkHealth
from .context import Dashboard

__all__ = ["metrics_router", "render_metrics"]

Sample = tuple[str, dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for metric, labels, value in samples:
        rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        lines.append(f"{metric}{{{rendered}}} {value:g}" if rendered else f"{metric} {value:g}")
    return lines


def render_metrics(dash: Dashboard) -> str:
    src = dash.sources
    # Counters only: the per-cabinet integrity is a pass over the fleet, not needed here.
    ingest, mqtt, tsdb = src.ingest_stats(integrity=False), src.mqtt_stats(), src.tsdb_stats()
    now = src.clock()
    statuses = alert_statuses(src.alerts.all(), src.state.silences(), src.state.acks(), now)
    alerts = Counter((s.state.value, s.alert.severity, s.alert.name) for s in statuses)
    cabinets = dash.counts.statuses(src.fleet)  # kept up to date, not a pass over the fleet
    p = "ladewache_"
    lines: list[str] = []
    lines += _family(p + "messages_received_total", "counter", "MQTT messages received",
                     [(p + "messages_received_total", {}, ingest.received)])
    lines += _family(p + "messages_accepted_total", "counter", "valid messages applied",
                     [(p + "messages_accepted_total", {}, ingest.accepted)])
    lines += _family(p + "messages_rejected_total", "counter", "invalid messages dropped, by reason",
                     [(p + "messages_rejected_total", {"reason": r}, n)
                      for r, n in sorted(ingest.rejected.items())])
    lines += _family(p + "mqtt_connected", "gauge", "1 while connected to the broker",
                     [(p + "mqtt_connected", {}, float(mqtt.connected))])
    silent = (now - mqtt.silent_since).total_seconds() if mqtt.silent_since is not None else 0.0
    lines += _family(p + "mqtt_silent_seconds", "gauge",
                     "seconds since any broker last delivered to this collector (0 while one does): "
                     "it judges no cabinet meanwhile",
                     [(p + "mqtt_silent_seconds", {}, max(silent, 0.0))])
    lines += _family(p + "mqtt_unheard_cabinets", "gauge",
                     "cabinets out of earshot: last heard through a broker connection that is down "
                     "(several brokers); not judged until heard again",
                     [(p + "mqtt_unheard_cabinets", {}, sum(len(u.cabinets) for u in src.unheard()))])
    lines += _family(p + "mqtt_connects_total", "counter", "successful broker connections",
                     [(p + "mqtt_connects_total", {}, mqtt.connects)])
    lines += _family(p + "mqtt_connection_losses_total", "counter", "lost broker connections",
                     [(p + "mqtt_connection_losses_total", {}, mqtt.connection_losses)])
    if src.leading is not None:  # an alert on sum(ladewache_leading) != 1 finds a lost leader
        lines += _family(p + "leading", "gauge",
                         "1 while this collector leads (alert rules, notifications, history)",
                         [(p + "leading", {}, float(src.leading()))])
    lines += _family(p + "tsdb_health", "gauge", "1 for the TSDB writer's current health",
                     [(p + "tsdb_health", {"health": h.value}, float(tsdb.health is h))
                      for h in SinkHealth])
    for name, value, help_text in (("written", tsdb.written, "lines written"),
                                   ("dropped", tsdb.dropped, "lines dropped (buffer full)"),
                                   ("errors", tsdb.errors, "failed write requests")):
        metric = f"{p}tsdb_{name}_total"
        lines += _family(metric, "counter", f"TSDB {help_text}", [(metric, {}, value)])
    lines += _family(p + "tsdb_buffered_lines", "gauge", "lines waiting to be written",
                     [(p + "tsdb_buffered_lines", {}, tsdb.buffered)])
    lines += _family(p + "cabinets", "gauge", "cabinets known, by status",
                     [(p + "cabinets", {"status": s}, n) for s, n in sorted(cabinets.items())])
    lines += _family(p + "alerts", "gauge", "alerts by state, severity and name",
                     [(p + "alerts", {"state": st, "severity": sev, "alertname": name}, n)
                      for (st, sev, name), n in sorted(alerts.items())])
    return "\n".join(lines) + "\n"


def metrics_router(dash: Dashboard) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus text format: ingest, MQTT, TSDB and alert counts."""
        return PlainTextResponse(render_metrics(dash),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    return router
