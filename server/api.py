"""The HTTP API (FastAPI): fleet state, alerts and counters; acknowledgements and silences.

Every endpoint but ``/healthz`` needs a login session or an API token (``server/auth``); lists are
filtered to the caller's scope and actions outside it are refused with 403 (docs/dashboard.md).
Every route declares its response model (``server/api_models.py``) and its error answers, so
``/openapi.json`` describes what is really sent; JSON bodies holding what JSON cannot carry
(``NaN``, ``Infinity``, ``1e999``, a lone surrogate) or larger than 64 KiB are refused app-wide
(``server/json_bodies.py``). Whoever acknowledges or silences is the logged-in user, never a name
in the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .alerts.silence import Silence, SilenceKind, Weekly
from .alerts.state import StoredState
from .alerts.status import alert_statuses
from .alerts.store import Ack, AckStore, AlertStore, SilenceStore
from .api_models import (
    AckResultOut,
    AlertsOut,
    FleetOut,
    HealthOut,
    SilenceOut,
    SilencesOut,
    StatsOut,
    error_responses,
)
from .apidocs import install_api_docs
from .assets import AssetRegister
from .auth import Auth, Principal, Scope
from .brokers import Unheard
from .clock import Clock, utcnow
from .fleet import CabinetKey, Fleet
from .i18n import DEFAULT_LANGUAGE, Language
from .ingest import MqttStats
from .inventory import Inventory
from .json_bodies import StrictJsonBodies
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

__all__ = ["ApiSources", "InScope", "Who", "create_app", "invalid", "refuse_unless"]


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
    state: StateStore = field(default_factory=StoredState.in_memory)
    org: Organisation = field(default_factory=Organisation)
    # The default knows no users, so it refuses every request: secure unless configured.
    auth: Auth = field(default_factory=Auth)
    # The inventory's asset tags (server/assets.py); the default is an empty one in memory.
    assets: AssetRegister = field(default_factory=lambda: AssetRegister(Inventory.in_memory(utcnow)))
    # whether this collector leads now (server/leader.py); None: not told
    leading: Callable[[], bool] | None = None
    # the broker connections down and the cabinets out of earshot by each (server/brokers.py)
    unheard: Callable[[], list[Unheard]] = list
    # whether a cabinet is out of earshot now (BrokerLinks.deaf; None: every one can be heard)
    deaf: Callable[[], Callable[[CabinetKey], bool] | None] = lambda: None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The author of an acknowledgement or silence is the logged-in user (the API token's or session's
# user). Clients written before that sent a name; it is still accepted, so they keep working, but
# ignored: anyone could have claimed to be anyone.
_IGNORED_AUTHOR: Any = {"deprecated": True}
_AUTHOR_NOTE = ("Ignored, accepted only for old clients: the author is always the logged-in user "
                "(session or API token).")


class AckBody(_Body):
    by: str | None = Field(default=None, max_length=100, description=_AUTHOR_NOTE,
                           json_schema_extra=_IGNORED_AUTHOR)
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
    created_by: str | None = Field(default=None, max_length=100, description=_AUTHOR_NOTE,
                                   json_schema_extra=_IGNORED_AUTHOR)
    comment: str = Field(default="", max_length=1000)
    weekly: WeeklyBody | None = Field(default=None, description="recurring: active only then")


class TechnicianBody(_Body):
    by: str | None = Field(default=None, max_length=100, description=_AUTHOR_NOTE,
                           json_schema_extra=_IGNORED_AUTHOR)
    until: AwareDatetime = Field(description="end of the visit; the silence ends then")
    comment: str = Field(default="", max_length=1000)


def refuse_unless(allowed: bool) -> None:
    if not allowed:
        raise HTTPException(403, "outside your role or scope")


def invalid(loc: tuple[str | int, ...], message: str, value: object = None) -> RequestValidationError:
    """A 422 in FastAPI's own shape (the one /openapi.json documents), naming the field."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message,
                                    "input": value}])


def _caller(request: Request) -> Principal:
    sources: ApiSources = request.app.state.api_sources
    return sources.auth.require(request)


def _scope(request: Request) -> Scope:
    sources: ApiSources = request.app.state.api_sources
    return sources.auth.require(request).scope(sources.org)


Who = Annotated[Principal, Depends(_caller)]  # 401 without login or token; CSRF on a POST
InScope = Annotated[Scope, Depends(_scope)]


_AUTHOR_CHOICE = ("The author is the logged-in user (the session's or the API token's); a name in "
                  "the body (`{field}`, from older clients) is accepted but ignored.")


def create_app(sources: ApiSources) -> FastAPI:
    # /docs from files in this package, not a CDN (server/apidocs); no ReDoc.
    app = FastAPI(title="Ladewache collector", version=__version__, docs_url=None, redoc_url=None)
    install_api_docs(app)
    app.state.api_sources = sources
    app.add_middleware(StrictJsonBodies)
    state = sources.state
    reading = error_responses(401)  # every read is scoped; outside it lists are filtered
    acting = error_responses(401, 403, 413)  # 413: any POST with a JSON body (json_bodies.py)

    @app.get("/api/fleet", response_model=FleetOut, responses=reading)
    def fleet(scope: InScope) -> JSONResponse:
        """Every cabinet (in your scope) with its slots (state, how sure it is and the evidence:
        `certainty`, `last_draw_at`, `unseen_since`), what its hardware senses (`sensing`), and
        last-seen times."""
        cabinets = [c for c in sources.fleet.snapshot() if scope.sees(c.site)]
        # The one unbounded answer (every slot of the fleet) skips FastAPI's check against its
        # model, which cost four times the building of it (3,000 × 32 slots: 1.8 s of 2.4 s); the
        # model is still what /openapi.json publishes, and tests check the answer against it.
        return JSONResponse(fleet_json(cabinets, sources.clock()))

    @app.get("/api/alerts", response_model=AlertsOut, responses=reading)
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
                           state_filter, lang, sources.org)

    @app.post("/api/alerts/{fingerprint}/ack", response_model=AckResultOut,
              responses=error_responses(401, 403, 404, 413),
              description="Acknowledge the active alert: it stays firing and visible but is not "
                          "repeated. " + _AUTHOR_CHOICE.format(field="by"))
    def acknowledge(fingerprint: str, body: AckBody, who: Who) -> dict[str, Any]:
        alert = sources.alerts.get_active(fingerprint)
        scope = who.scope(sources.org)
        refuse_unless(scope.can_write and (alert is None or scope.sees_labels(alert.labels)))
        if alert is None:
            raise HTTPException(404, f"no active alert {fingerprint}")
        ack = Ack(fingerprint, alert.active_at, who.name, body.comment, sources.clock())
        state.acknowledge(ack)
        return {"fingerprint": fingerprint, "ack": ack_json(ack)}

    @app.get("/api/silences", response_model=SilencesOut, responses=reading)
    def silences(scope: InScope) -> dict[str, Any]:
        now = sources.clock()
        return {"generated_at": now.isoformat(),
                "silences": [silence_json(s, now) for s in state.silences()
                             if scope.sees_labels(s.matchers)]}

    @app.post("/api/silences", status_code=201, response_model=SilenceOut, responses=acting,
              description="A one-off silence, or a recurring one with `weekly`. Outside the "
                          "district admin's role it must match one `site` of your scope. "
                          + _AUTHOR_CHOICE.format(field="created_by"))
    def create_silence(body: SilenceBody, who: Who) -> dict[str, Any]:
        scope = who.scope(sources.org)
        refuse_unless(scope.can_write and scope.sees_labels(body.matchers))
        now = sources.clock()
        weekly = None
        if body.weekly is not None:
            try:
                weekly = Weekly(frozenset(body.weekly.days), body.weekly.start, body.weekly.end,
                                sources.org.timezone)
            except ValueError as exc:
                raise invalid(("body", "weekly"), str(exc)) from exc
        starts = body.starts_at or now
        if body.ends_at <= starts:
            raise invalid(("body", "ends_at"), "ends_at must be after starts_at",
                          body.ends_at.isoformat())
        try:
            silence = Silence(body.matchers, starts, body.ends_at, who.name, body.comment,
                              SilenceKind.SILENCE, weekly, now)
        except ValueError as exc:
            raise invalid(("body",), str(exc)) from exc
        state.add_silence(silence)
        return silence_json(silence, now)

    @app.post("/api/silences/{silence_id}/expire", response_model=SilenceOut,
              responses=error_responses(401, 403, 404, 413))
    def expire_silence(silence_id: str, scope: InScope) -> dict[str, Any]:
        now = sources.clock()
        target = next((s for s in state.silences() if s.id == silence_id), None)
        refuse_unless(scope.can_write and (target is None or scope.sees_labels(target.matchers)))
        silence = state.expire_silence(silence_id, now)
        if silence is None:
            raise HTTPException(404, f"no running or future silence {silence_id}")
        return silence_json(silence, now)

    @app.post("/api/cabinets/{site}/{cabinet}/technician", status_code=201,
              response_model=SilenceOut, responses=acting,
              description="Mute every alert of one cabinet until the technician leaves. "
                          + _AUTHOR_CHOICE.format(field="by"))
    def technician_on_site(site: str, cabinet: str, body: TechnicianBody,
                           who: Who) -> dict[str, Any]:
        refuse_unless(who.scope(sources.org).acts_on(site))
        now = sources.clock()
        if body.until <= now or body.until - now > timedelta(days=7):
            raise invalid(("body", "until"), "until must be in the future and within 7 days",
                          body.until.isoformat())
        silence = Silence({"site": site, "cabinet": cabinet}, now, body.until, who.name,
                          body.comment, SilenceKind.TECHNICIAN, None, now)
        state.add_silence(silence)
        return silence_json(silence, now)

    @app.get("/api/stats", response_model=StatsOut, responses=reading)
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

    @app.get("/healthz", response_model=HealthOut, response_model_exclude_none=True)
    def healthz() -> dict[str, Any]:
        """Liveness: always 200 while the process serves; the body says what is degraded."""
        return health_json(sources.mqtt_stats().connected, sources.tsdb_stats(),
                           sources.leading() if sources.leading is not None else None)

    return app
