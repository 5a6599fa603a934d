"""The HTTP API (FastAPI). Read-only views of fleet state, alerts and counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Query

from .alerts.store import AlertStore
from .clock import Clock
from .fleet import Fleet
from .i18n import DEFAULT_LANGUAGE, Language
from .ingest import MqttStats
from .pipeline import IngestStats
from .tsdb.base import SinkStats
from .version import __version__
from .views import AlertFilter, alerts_json, fleet_json, health_json, stats_json

__all__ = ["ApiSources", "create_app"]


@dataclass(frozen=True)
class ApiSources:
    """Everything the API reads; each a cheap, thread-safe call."""

    fleet: Fleet
    alerts: AlertStore
    clock: Clock
    ingest_stats: Callable[[], IngestStats]
    mqtt_stats: Callable[[], MqttStats]
    tsdb_stats: Callable[[], SinkStats]


def create_app(sources: ApiSources) -> FastAPI:
    app = FastAPI(title="Ladewache collector", version=__version__)

    @app.get("/api/fleet")
    def fleet() -> dict[str, Any]:
        """Every cabinet with its slots, state and last-seen times."""
        return fleet_json(sources.fleet.snapshot(), sources.clock())

    @app.get("/api/alerts")
    def alerts(
        state: Annotated[AlertFilter, Query(
            description="all, active (pending + firing), firing, pending or resolved")] = "all",
        lang: Annotated[Language, Query(description="language of the summaries")] = DEFAULT_LANGUAGE,
    ) -> dict[str, Any]:
        """Alerts with a summary text in German (default) or English."""
        return alerts_json(sources.alerts.all(), sources.clock(), state, lang)

    @app.get("/api/stats")
    def stats() -> dict[str, Any]:
        return stats_json(sources.ingest_stats(), sources.mqtt_stats(), sources.tsdb_stats(),
                          len(sources.fleet))

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness: always 200 while the process serves; the body says what is degraded."""
        return health_json(sources.mqtt_stats().connected, sources.tsdb_stats())

    return app
