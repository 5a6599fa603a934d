"""The HTTP API (FastAPI): fleet state, alerts and counters; acknowledgements and silences.

Every endpoint but ``/healthz`` needs a login session or an API token (``server/auth``); lists are
filtered to the caller's scope and actions outside it are refused with 403 (docs/dashboard.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .alerts.silence import Silence, SilenceKind, Weekly
from .alerts.status import alert_statuses
from .alerts.store import Ack, AckStore, AlertStore, MemoryState, SilenceStore
from .auth import Auth, Principal, Scope
from .clock import Clock
from .fleet import Fleet
from .i18n import DEFAULT_LANGUAGE, Language
from .ingest import MqttStats
from .org import Organisation
from .pipeline import IngestStats
from .tsdb.base import SinkStats
from .version import __version__
from .views import (
    DEFAULT_INTEGRITY_LIMIT,
    MAX_INTEGRITY_LIMIT,
    AlertFilter,
    IntegrityListing,
    ack_json,
    alerts_json,
    fleet_json,
    health_json,
    silence_json,
    stats_json,
)

__all__ = ["ApiSources", "InScope", "Who", "create_app", "refuse_unless"]


class StateStore(AlertStore, SilenceStore, AckStore, Protocol):
    """What the API reads and writes: alerts, silences, acknowledgements."""


@dataclass(frozen=True)
class ApiSources:
    """Everything the API reads; each a cheap, thread-safe call."""

    fleet: Fleet
    alerts: AlertStore
    clock: Clock
    ingest_stats: Callable[..., IngestStats]  # Pipeline.stats: (integrity: bool = True)
    mqtt_stats: Callable[[], MqttStats]
    tsdb_stats: Callable[[], SinkStats]
    state: StateStore = field(default_factory=MemoryState)
    org: Organisation = field(default_factory=Organisation)
    # The default knows no users, so it refuses every request: secure unless configured.
    auth: Auth = field(default_factory=Auth)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AckBody(_Body):
    by: str = Field(min_length=1, max_length=100, description="who takes it on")
    comment: str = Field(default="", max_length=1000, description="what is being done")


class WeeklyBody(_Body):
    days: list[int] = Field(min_length=1, description="0 = Monday … 6 = Sunday")
    start: time = Field(description="local start time, e.g. 07:00")
    end: time = Field(description="local end time; before start = the window passes midnight")


class SilenceBody(_Body):
    matchers: dict[str, str] = Field(
        min_length=1, description="label = value pairs, e.g. {site: gs-park, cabinet: k1}"
    )
    starts_at: AwareDatetime | None = Field(default=None, description="default: now")
    ends_at: AwareDatetime = Field(description="the silence ends then (a recurring one too)")
    created_by: str = Field(min_length=1, max_length=100)
    comment: str = Field(default="", max_length=1000)
    weekly: WeeklyBody | None = Field(default=None, description="recurring: active only then")


class TechnicianBody(_Body):
    by: str = Field(min_length=1, max_length=100, description="the technician")
    until: AwareDatetime = Field(description="end of the visit; the silence ends then")
    comment: str = Field(default="", max_length=1000)


def refuse_unless(allowed: bool) -> None:
    if not allowed:
        raise HTTPException(403, "outside your role or scope")


def _caller(request: Request) -> Principal:
    sources: ApiSources = request.app.state.api_sources
    return sources.auth.require(request)


def _scope(request: Request) -> Scope:
    sources: ApiSources = request.app.state.api_sources
    return sources.auth.require(request).scope(sources.org)


Who = Annotated[Principal, Depends(_caller)]  # 401 without login or token; CSRF on a POST
InScope = Annotated[Scope, Depends(_scope)]


def create_app(sources: ApiSources) -> FastAPI:
    app = FastAPI(title="Ladewache collector", version=__version__)
    app.state.api_sources = sources
    state = sources.state

    @app.get("/api/fleet")
    def fleet(scope: InScope) -> dict[str, Any]:
        """Every cabinet (in your scope) with its slots (state, how sure it is and the evidence:
        `certainty`, `last_draw_at`, `unseen_since`), what its hardware senses (`sensing`), and
        last-seen times."""
        cabinets = [c for c in sources.fleet.snapshot() if scope.sees(c.site)]
        return fleet_json(cabinets, sources.clock())

    @app.get("/api/alerts")
    def alerts(
        scope: InScope,
        state_filter: Annotated[AlertFilter, Query(
            alias="state",
            description="all, active (pending + firing), firing, pending or resolved")] = "all",
        lang: Annotated[Language, Query(description="language of the summaries")] = DEFAULT_LANGUAGE,
    ) -> dict[str, Any]:
        """Alerts with a summary in German (default) or English, severity, group, and whether
        they are acknowledged, silenced or inhibited."""
        now = sources.clock()
        statuses = alert_statuses(sources.alerts.all(), state.silences(), state.acks(), now)
        return alerts_json([s for s in statuses if scope.sees_labels(s.alert.labels)], now,
                           state_filter, lang)

    @app.post("/api/alerts/{fingerprint}/ack")
    def acknowledge(fingerprint: str, body: AckBody, who: Who) -> dict[str, Any]:
        """Acknowledge the active alert: it stays firing and visible but is not repeated."""
        alert = sources.alerts.get_active(fingerprint)
        scope = who.scope(sources.org)
        refuse_unless(scope.can_write and (alert is None or scope.sees_labels(alert.labels)))
        if alert is None:
            raise HTTPException(404, f"no active alert {fingerprint}")
        ack = Ack(fingerprint, alert.active_at, body.by, body.comment, sources.clock())
        state.acknowledge(ack)
        return {"fingerprint": fingerprint, "ack": ack_json(ack)}

    @app.get("/api/silences")
    def silences(scope: InScope) -> dict[str, Any]:
        now = sources.clock()
        return {"generated_at": now.isoformat(),
                "silences": [silence_json(s, now) for s in state.silences()
                             if scope.sees_labels(s.matchers)]}

    @app.post("/api/silences", status_code=201)
    def create_silence(body: SilenceBody, scope: InScope) -> dict[str, Any]:
        """A one-off silence, or a recurring one with ``weekly``. Outside the district admin's
        role it must match one ``site`` of your scope."""
        refuse_unless(scope.can_write and scope.sees_labels(body.matchers))
        now = sources.clock()
        weekly = None
        try:
            if body.weekly is not None:
                weekly = Weekly(frozenset(body.weekly.days), body.weekly.start, body.weekly.end,
                                sources.org.timezone)
            starts = body.starts_at or now
            if body.ends_at <= starts:
                raise ValueError("ends_at must be after starts_at")
            silence = Silence(body.matchers, starts, body.ends_at, body.created_by, body.comment,
                              SilenceKind.SILENCE, weekly, now)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        state.add_silence(silence)
        return silence_json(silence, now)

    @app.post("/api/silences/{silence_id}/expire")
    def expire_silence(silence_id: str, scope: InScope) -> dict[str, Any]:
        now = sources.clock()
        target = next((s for s in state.silences() if s.id == silence_id), None)
        refuse_unless(scope.can_write and (target is None or scope.sees_labels(target.matchers)))
        silence = state.expire_silence(silence_id, now)
        if silence is None:
            raise HTTPException(404, f"no running or future silence {silence_id}")
        return silence_json(silence, now)

    @app.post("/api/cabinets/{site}/{cabinet}/technician", status_code=201)
    def technician_on_site(site: str, cabinet: str, body: TechnicianBody,
                           scope: InScope) -> dict[str, Any]:
        """Mute every alert of one cabinet until the technician leaves."""
        refuse_unless(scope.acts_on(site))
        now = sources.clock()
        if body.until <= now or body.until - now > timedelta(days=7):
            raise HTTPException(422, "until must be in the future and within 7 days")
        silence = Silence({"site": site, "cabinet": cabinet}, now, body.until, body.by,
                          body.comment, SilenceKind.TECHNICIAN, None, now)
        state.add_silence(silence)
        return silence_json(silence, now)

    @app.get("/api/stats")
    def stats(
        scope: InScope,
        integrity: Annotated[IntegrityListing, Query(
            description="which cabinets to list in `integrity`: those with a problem (gaps, "
                        "duplicates, clock skewed or unsynchronised, outbox drops), all, or "
                        "none; `integrity_summary` has the totals over every cabinet in your "
                        "scope either way")] = "problems",
        integrity_limit: Annotated[int, Query(
            ge=0, le=MAX_INTEGRITY_LIMIT,
            description="list at most this many (in site/cabinet order)")] = DEFAULT_INTEGRITY_LIMIT,
    ) -> dict[str, Any]:
        """Ingest, MQTT and TSDB counters, and delivery integrity: totals over the cabinets in
        your scope and, bounded, the cabinets with a problem (per cabinet also in /api/fleet)."""
        return stats_json(sources.ingest_stats(), sources.mqtt_stats(), sources.tsdb_stats(),
                          len(sources.fleet), scope.sites, integrity, integrity_limit)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness: always 200 while the process serves; the body says what is degraded."""
        return health_json(sources.mqtt_stats().connected, sources.tsdb_stats())

    return app

