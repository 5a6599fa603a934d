"""The shipped Grafana dashboards query only series the collector actually writes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cabinet_agent.common.protocol import (
    ChargeSession,
    DeviceHealth,
    EventKind,
    EventMessage,
    SessionEnd,
    TelemetryMessage,
)
from server.tsdb.lines import message_lines

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
T = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ENV = {"v": 1, "site": "gs", "cabinet": "c1", "boot_id": "a" * 32, "seq": 1, "ts": T, "clock_synced": True}


def _written() -> dict[str, set[str]]:
    """measurement -> fields, from the collector's own line-protocol code for full messages."""
    telemetry = TelemetryMessage(**ENV, power_w=[12.0], states=["charging"], temperature_c=21.0,
                                 door="open", mains="on", devices=[DeviceHealth(name="m", ok=True)],
                                 poll_ms=3.0)
    session = ChargeSession(slot=1, asset_tag="T", started_at=T - timedelta(hours=2), ended_at=T,
                            duration_s=7200, energy_wh=30, peak_w=20, end=SessionEnd.FULL, taper_wh=9)
    event = EventMessage(**ENV, event=EventKind.SESSION_ENDED, slot=1, session=session)
    written: dict[str, set[str]] = {}
    for message in (telemetry, event):
        for line in message_lines(message, {1: "T"}, T):
            head, fields, _ = line.split(" ")
            written.setdefault(head.split(",")[0], set()).update(f.split("=")[0] for f in fields.split(","))
    return written


def test_promql_dashboard_uses_only_written_series() -> None:
    dashboard = json.loads((GRAFANA / "ladewache-victoriametrics.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    metrics = {m for e in expressions for m in re.findall(r"\b((?:slot|cabinet|session)_[a-z_]+)\{", e)}
    # VictoriaMetrics names an InfluxDB field <measurement>_<field>.
    available = {f"{m}_{f}" for m, fields in _written().items() for f in fields}
    assert metrics and metrics <= available, metrics - available
    assert len(expressions) >= 9


def test_flux_dashboard_uses_only_written_measurements_and_fields() -> None:
    dashboard = json.loads((GRAFANA / "ladewache-influxdb.json").read_text())
    queries = [t["query"] for p in dashboard["panels"] for t in p["targets"]]
    pairs = {m for q in queries for m in re.findall(
        r'r\._measurement == "(\w+)" and r\._field == "(\w+)"', q)}
    written = _written()
    assert pairs and all(f in written.get(m, set()) for m, f in pairs), pairs


@pytest.mark.parametrize("name", ["ladewache-victoriametrics.json", "ladewache-influxdb.json"])
def test_dashboards_have_unique_panel_ids_and_german_titles_first(name: str) -> None:
    dashboard = json.loads((GRAFANA / name).read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(" / " in p["title"] for p in dashboard["panels"])  # "Deutsch / English"
