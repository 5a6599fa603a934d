"""The HTTP API's response bodies as pydantic models: what ``/openapi.json`` publishes.

``server/views.py`` and ``server/web/data.py`` build the bodies as plain JSON values (the pages
share them); every JSON route names its model here as ``response_model``, so FastAPI checks each
body against it before sending. The models forbid unknown keys, so a field added to a view but
not here fails loudly (500, and the schema fuzz test) instead of being published undocumented.
Timestamps stay the strings the views made (ISO 8601 with offset), so their format is unchanged.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cabinet_agent.common.protocol import (
    Certainty,
    ChargeSession,
    DoorState,
    MainsState,
    Sensing,
    SlotState,
)

from .alerts.model import AlertState
from .alerts.silence import SilenceKind
from .auth import Role
from .fleet import FleetStatus
from .i18n import Language
from .json_bodies import MAX_BODY_BYTES
from .tsdb.base import SinkHealth

__all__ = [
    "AckOut", "AckResultOut", "AlertOut", "AlertsOut", "CabinetOut", "ErrorOut", "FleetOut",
    "HealthOut", "HistoryOut", "IPadOut", "ImportOut", "InventoryOut", "MeOut", "OverviewOut",
    "ReportOut", "SearchOut",
    "SilenceOut", "SilencesOut", "StatsOut", "csv_responses", "error_responses",
]

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"},
                                 description="ISO 8601 with offset")]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Out):
    """401, 403, 404 and 413: what went wrong, in one sentence."""

    detail: str


_ERRORS = {
    401: "no login session and no valid API token",
    403: "outside your role or scope, or a session's request without its CSRF token",
    404: "not found",
    413: f"a JSON body larger than {MAX_BODY_BYTES // 1024} KiB",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route may give, for its ``responses=`` (422 FastAPI adds itself)."""
    return {code: {"model": ErrorOut, "description": _ERRORS[code]} for code in codes}


def csv_responses(what: str) -> dict[int | str, dict[str, Any]]:
    """A CSV export's answers. Its errors are JSON: spelt out, as FastAPI would give a ``model``
    the route's own media type (text/csv)."""
    error = {"application/json": {"schema": ErrorOut.model_json_schema()}}
    return {200: {"description": what, "content": {"text/csv": {"schema": {"type": "string"}}}},
            401: {"description": _ERRORS[401], "content": error}}


# ------------------------------------------------------------------ fleet

class DeviceOut(_Out):
    name: str
    ok: bool
    error: str | None


class SlotOut(_Out):
    slot: int
    asset_tag: str | None
    state: SlotState
    power_w: float | None
    since: Timestamp | None
    certainty: Certainty | None = Field(description="protocol revision 2; null from older agents")
    last_draw_at: Timestamp | None
    unseen_since: Timestamp | None


class IntegrityOut(_Out):
    """Delivery counters of one cabinet (docs/reliability.md)."""

    seq_gaps: int
    duplicates: int
    replayed: int
    clock_skewed: int
    clock_skew_s: float | None
    clock_unsynced: int
    outbox_dropped: int | None
    rejected: int = Field(description="messages on this cabinet's topics refused at the boundary")
    last_rejected: str | None = Field(description="the newest refusal's reason (as in /api/stats)")
    out_of_window: int = Field(
        description="messages whose time lay outside the window: stored at their receive time")
    events_lost: int = Field(description="events acknowledged by the broker that never arrived")
    events_lost_at: datetime | None = Field(description="when the newest loss was proven")


class BootChangeOut(_Out):
    previous_boot_id: str
    boot_id: str
    seen_at: Timestamp
    after_offline: bool
    offline_since: Timestamp | None


class CabinetOut(_Out):
    site: str
    cabinet: str
    status: FleetStatus
    status_reason: str | None
    status_since: Timestamp | None
    first_seen_at: Timestamp
    last_seen_at: Timestamp
    last_message_ts: Timestamp
    boot_id: str | None
    agent_version: str | None
    model: str | None
    config_hash: str | None
    slot_count: int | None
    telemetry_interval_s: float | None
    poll_interval_s: float | None
    door: DoorState
    mains: MainsState
    temperature_c: float | None
    devices: list[DeviceOut]
    slots: list[SlotOut]
    sensing: Sensing | None = Field(description="what the hardware observes; null from older agents")
    integrity: IntegrityOut
    stale_messages: int
    boot_changes: list[BootChangeOut]


class FleetOut(_Out):
    generated_at: Timestamp
    cabinets: list[CabinetOut]


# ----------------------------------------------------------------- alerts

class AckOut(_Out):
    by: str = Field(description="the logged-in user who acknowledged")
    comment: str
    at: Timestamp


class AlertOut(_Out):
    fingerprint: str
    alertname: str
    state: AlertState
    severity: str
    group: str = Field(description="site/cabinet: notifications are grouped per cabinet")
    labels: dict[str, str]
    annotations: dict[str, str]
    summary: str
    active_at: Timestamp
    starts_at: Timestamp
    ends_at: Timestamp | None
    acknowledged: bool
    ack: AckOut | None
    silenced: bool
    silenced_by: list[str]
    inhibited: bool
    inhibited_by: str | None


class AlertsOut(_Out):
    generated_at: Timestamp
    lang: Language
    alerts: list[AlertOut]


class AckResultOut(_Out):
    fingerprint: str
    ack: AckOut


class WeeklyOut(_Out):
    days: list[int]
    start: str = Field(description="local time HH:MM")
    end: str = Field(description="local time HH:MM")
    timezone: str


class SilenceOut(_Out):
    id: str
    kind: SilenceKind
    matchers: dict[str, str]
    starts_at: Timestamp
    ends_at: Timestamp
    created_by: str = Field(description="the logged-in user who created it")
    comment: str
    created_at: Timestamp | None
    weekly: WeeklyOut | None
    active: bool
    expired: bool


class SilencesOut(_Out):
    generated_at: Timestamp
    silences: list[SilenceOut]


# ------------------------------------------------------------ counters

class IntegrityTotalsOut(_Out):
    seq_gaps: int
    duplicates: int
    replayed: int
    clock_skewed: int
    clock_unsynced: int
    outbox_dropped: int
    rejected: int
    out_of_window: int
    events_lost: int


class IntegritySummaryOut(_Out):
    cabinets: int
    with_problems: int
    listing: Literal["problems", "all", "none"]
    limit: int
    listed: int
    truncated: bool
    totals: IntegrityTotalsOut


class MqttOut(_Out):
    connected: bool
    connects: int
    connection_losses: int
    last_error: str | None


class TsdbOut(_Out):
    health: SinkHealth
    written: int
    dropped: int
    errors: int
    buffered: int
    last_error: str | None


class StatsOut(_Out):
    received: int
    accepted: int
    rejected: dict[str, int]
    duplicates: int
    events_stored: int
    integrity: dict[str, IntegrityOut] = Field(description="per site/cabinet, bounded")
    integrity_summary: IntegritySummaryOut
    cabinets: int
    mqtt: MqttOut
    tsdb: TsdbOut


class HealthOut(_Out):
    mqtt_connected: bool
    tsdb: SinkHealth
    leading: bool | None = None  # whether it runs the alert rules and notifications now


# -------------------------------------------------------------- dashboard

class MeOut(_Out):
    name: str
    role: Role
    via: Literal["session", "token", "disabled"]
    municipality: str | None
    school: str | None
    sites: list[str] | None = Field(description="null: every site (district admin)")
    can_write: bool


class CountsOut(_Out):
    cabinets: int
    online: int
    slots: int
    present: int
    charging: int
    charged: int
    missing: int
    faulty: int
    unknown: int
    unconfirmed: int
    cannot_tell: int
    power_only: int
    alerts: int


class OverviewCabinetOut(_Out):
    cabinet: str
    name: str
    status: Literal["online", "offline", "stopped", "unknown", "never"]
    counts: CountsOut


class SchoolOut(_Out):
    site: str
    name: str
    counts: CountsOut
    cabinets: list[OverviewCabinetOut]


class MunicipalityOut(_Out):
    id: str
    name: str
    counts: CountsOut
    schools: list[SchoolOut]


class OverviewOut(_Out):
    district: str
    counts: CountsOut
    page: int
    pages: int
    per_page: int
    total_cabinets: int
    municipalities: list[MunicipalityOut]


class TransitionOut(_Out):
    at: Timestamp
    state: SlotState


class SampleOut(_Out):
    at: Timestamp
    power_w: float | None


class HistoryOut(_Out):
    source: Literal["server"]
    transitions: list[TransitionOut]
    samples: list[SampleOut]
    sessions: list[ChargeSession]


class HitOut(_Out):
    kind: Literal["slot", "school"]
    site: str
    cabinet: str | None
    slot: int | None
    label: str


class SearchOut(_Out):
    query: str
    hits: list[HitOut]


# -------------------------------------------------------------- inventory

class IPadOut(_Out):
    asset_tag: str
    serial: str | None
    name: str | None
    site: str | None = Field(description="where it lives; null: in no slot")
    cabinet: str | None
    slot: int | None
    placed_at: Timestamp | None


class InventoryOut(_Out):
    ipads: list[IPadOut]
    truncated: bool = Field(description="more iPads than listed: filter by school")


class ImportErrorOut(_Out):
    line: int = Field(description="line in the file (0: the file as a whole)")
    code: str
    message: str


class ImportOut(_Out):
    saved: bool = Field(description="false: nothing was changed (a dry run, or errors)")
    added: int
    updated: int
    unchanged: int
    skipped: int = Field(description="rows without an asset tag")
    errors: list[ImportErrorOut]


# ---------------------------------------------------------------- reports

class ReportDayOut(_Out):
    day: date = Field(description="a local day")
    school_day: bool
    ready: int = Field(description="iPads charged at school start (shared-pool schools)")
    ready_known: int = Field(description="iPads judged at school start, charged or not")
    readiness: float | None = Field(description="ready / ready_known; null: none judged")
    not_returned: int = Field(description="iPads not back at the day's last return check")
    return_known: int = Field(description="iPads judged at the return check")
    sessions: int = Field(description="charge sessions that ended that day")
    energy_kwh: float
    cost_eur: float


class ReportFiguresOut(_Out):
    """One school's, one municipality's or everybody's figures for the period."""

    id: str = Field(description="the school's site id, the municipality's id, '' for the total")
    name: str
    municipality: str | None = Field(description="a school's municipality id; null otherwise")
    school_days: int
    ready: int
    ready_known: int
    readiness: float | None = Field(description="share charged at school start, 0..1")
    not_returned: int
    not_returned_per_school_day: float | None
    sessions: int
    energy_kwh: float
    cost_eur: float = Field(description="energy at the configured price per kWh")
    availability: float | None = Field(description="share of the known time the cabinets were "
                                                   "online, 0..1")
    days: list[ReportDayOut] = Field(description="per day with data; schools only")


class ReportBatteryOut(_Out):
    asset_tag: str
    site: str | None
    school: str | None = Field(description="the school's name")
    cabinet: str | None
    cabinet_name: str | None
    slot: int | None
    remaining: float = Field(description="recent taper energy / the iPad's early baseline")
    baseline_wh: float
    recent_wh: float
    full_charges: int
    worn: bool


class ReportOut(_Out):
    title: str = Field(description="the school's, municipality's or district's name")
    first: date
    last: date
    price_eur_kwh: float
    schools: list[ReportFiguresOut]
    municipalities: list[ReportFiguresOut]
    total: ReportFiguresOut
    batteries: list[ReportBatteryOut] = Field(description="most worn first")
