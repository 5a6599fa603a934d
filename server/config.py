"""The collector's configuration: TOML file plus ``LADEWACHE_…`` environment overrides.

Every key is described here once; ``deploy/examples/server.toml`` shows them with their defaults.
Relative paths (``mqtt.ca_file``) are relative to the config file.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from cabinet_agent.common.broker_address import BrokerAddress, check_broker_list, parse_broker
from cabinet_agent.common.configfile import (
    FileSettings,
    directory_problem,
    file_problem,
    load_settings,
    problem,
    tls_problems,
)
from cabinet_agent.common.mqtt_security import check_transport_security

from .alerts.rules import RulesSettings
from .notify.settings import NotifySettings
from .org import Organisation
from .redact import redact_url
from .store.engine import StoreUrlError, check_url

__all__ = [
    "AlertSettings",
    "HistorySettings",
    "HttpSettings",
    "IngestSettings",
    "MqttSettings",
    "ServerSettings",
    "StateSettings",
    "TsdbSettings",
    "load_server_settings",
    "preflight",
    "resolve_path",
    "store_location",
]


# MQTT 5: 0xFFFFFFFF means "never expires"; a collector's session is always meant to end.
MAX_SESSION_EXPIRY_S = 0xFFFFFFFE


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Section):
    host: str = Field(default="127.0.0.1", min_length=1, description="broker host name or address")
    port: int = Field(default=1883, ge=1, le=65535, description="broker port (8883 is usual with TLS)")
    username: str | None = Field(default=None, description="user name; none = anonymous")
    password: SecretStr | None = Field(default=None, description="password (never logged)")
    client_id: str = Field(
        default="ladewache-server",
        min_length=1,
        max_length=128,
        description=(
            "fixed MQTT client id; with a persistent session (MQTT 5, clean start off) the "
            "broker keeps QoS 1 messages while the collector restarts. The shipped broker config "
            "(use_username_as_clientid) ignores it and keys the session by username; the "
            "default is the default collector user, so both name one session"
        ),
    )
    keepalive: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive in seconds")
    session_expiry_s: int = Field(
        default=7 * 24 * 3600, ge=1, le=MAX_SESSION_EXPIRY_S,
        description="how long the broker keeps this collector's session (its subscription and "
                    "the QoS 1 messages queued for it) after the collector went away; a "
                    "collector away longer starts afresh (the retained states catch up). The "
                    "end of a collector taken out of service for good: its queue (up to the "
                    "broker's max_queued_bytes of RAM) is freed then (docs/deploy.md 6b)",
    )
    tls: bool = Field(default=False, description="connect with TLS")
    ca_file: Path | None = Field(
        default=None, description="CA bundle for TLS; none = the system's trust store"
    )
    cert_file: Path | None = Field(default=None, description="client certificate for TLS, optional")
    key_file: Path | None = Field(default=None, description="its private key (default: in cert_file)")
    allow_plaintext: bool = Field(
        default=False,
        description="allow plain MQTT (tls = false) to a host that is not loopback; the password "
                    "then crosses the network readable",
    )
    failover: list[str] = Field(
        default_factory=list,
        description="further brokers the agents may fail over to ([mqtt] failover in agent.toml): "
                    "the collector subscribes to each of them too, \"host\" or \"host:port\" "
                    "(IPv6: \"[fd00::2]:8883\"), with the same login, TLS files and client id "
                    "(docs/deploy.md 6c)",
    )
    failover_grace_s: float = Field(
        default=90.0, ge=0, le=3600,
        description="no longer used (accepted so that older configs load): each cabinet is judged "
                    "by the broker connection it was last heard through, and not at all while "
                    "that connection is down (docs/deploy.md 6c)",
    )
    reconnect_min_s: float = Field(
        default=1.0, gt=0, description="first wait before reconnecting to an unreachable broker"
    )
    reconnect_max_s: float = Field(
        default=30.0, gt=0, description="longest wait between reconnect attempts (back-off cap)"
    )

    @field_validator("failover")
    @classmethod
    def _failover(cls, entries: list[str], info: ValidationInfo) -> list[str]:
        check_broker_list(entries, info.data)  # names the entry; the keys before it in info.data
        return entries

    @property
    def brokers(self) -> tuple[BrokerAddress, ...]:
        """host:port first, then the failover brokers in their order."""
        return (BrokerAddress(self.host, self.port),
                *(parse_broker(entry, self.port) for entry in self.failover))

    @model_validator(mode="after")
    def _backoff_order(self) -> Self:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        check_transport_security(self.host, self.tls, self.allow_plaintext,
                                 self.cert_file, self.key_file)
        return self


class TsdbSettings(_Section):
    url: str | None = Field(
        default=None,
        description=(
            "InfluxDB-v2-write-compatible endpoint (InfluxDB 2, VictoriaMetrics); "
            "none = store no time series"
        ),
    )
    token: SecretStr = Field(
        default=SecretStr(""), description="API token (VictoriaMetrics accepts any)"
    )
    org: str = Field(default="ladewache", min_length=1, description="InfluxDB organisation")
    bucket: str = Field(default="ladewache", min_length=1, description="InfluxDB bucket")
    batch_size: int = Field(default=5000, ge=1, le=100_000, description="lines per write request")
    flush_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="longest time a line waits before it is written"
    )
    max_buffer_points: int = Field(
        default=500_000,
        ge=1,
        description=(
            "lines kept while the TSDB is unreachable; beyond this the oldest are dropped "
            "and counted"
        ),
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="HTTP timeout per write")
    spill_max_mb: float = Field(
        default=256.0, ge=0, le=65536,
        description=(
            "lines are journaled on disk ([state] dir/tsdb-journal) before the MQTT message is "
            "acknowledged, and kept there while the TSDB is down, up to this size (then the oldest "
            "are dropped and counted); 0 = no journal, memory only (lost on restart)"
        ),
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_serializer("url")
    def _shown(self, value: str | None) -> str | None:
        """Shown as scheme://host/… when the config is printed (it may carry user:password@)."""
        return redact_url(value) if value is not None else None

    @model_validator(mode="after")
    def _buffer_holds_a_batch(self) -> Self:
        if self.max_buffer_points < self.batch_size:
            raise ValueError("max_buffer_points must be >= batch_size")
        return self


class HttpSettings(_Section):
    host: str = Field(default="127.0.0.1", min_length=1, description="address the HTTP API binds to")
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP port; 0 = any free port")
    auth: bool = Field(
        default=True,
        description=(
            "require a login or API token (users in [state] dir, `cabinet-server user add`); "
            "false makes everyone a district admin: for a demo on localhost only"
        ),
    )
    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="a dashboard login lasts this long"
    )
    public_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="the address people open the dashboard at (https://ladewache.kreis.de): "
                    "notifications link to the cabinet's page and the digest to the missing-iPads "
                    "list; none = no links")
    trusted_proxies: list[str] = Field(
        default=[],
        description=(
            "addresses or networks of reverse proxies whose X-Forwarded-For/-Proto headers are "
            "believed (e.g. [\"127.0.0.1\"] for a proxy on this host); empty: the headers are "
            "ignored and the client is the TCP peer. Login limits count per client address"
        ),
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or network") \
                    from exc
        return value


class AlertSettings(_Section):
    offline_pending_s: float = Field(
        default=120.0,
        ge=0,
        description=(
            "a cabinet must be offline this long before the alert fires, so that a short "
            "network blip does not page a technician"
        ),
    )
    silence_factor: float = Field(
        default=3.0,
        ge=1,
        description="a cabinet is silent after silence_factor × its telemetry_interval_s",
    )
    min_silence_s: float = Field(
        default=30.0, gt=0, description="a cabinet is never called silent sooner than this"
    )
    tick_s: float = Field(default=1.0, gt=0, le=60, description="how often alert rules are evaluated")
    sweep_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description=(
            "each tick evaluates the cabinets that sent something plus a slice of the rest, so that "
            "every cabinet is evaluated at least this often; conditions that come true by time "
            "alone (silence, a calendar check) are seen up to this much later. Fleets of up to "
            "1,000 cabinets are evaluated whole at every tick"
        ),
    )
    resolved_retention_s: float = Field(
        default=86_400.0, ge=0, description="how long resolved alerts stay visible"
    )
    offline_severity: Literal["info", "warning", "critical"] = Field(
        default="critical", description="severity of cabinet_offline"
    )
    settle_s: float = Field(
        default=10.0,
        ge=0,
        description=(
            "after the collector (re)starts receiving, resolve nothing for this long: the "
            "retained messages that tell each cabinet's truth are still arriving"
        ),
    )
    rules: RulesSettings = Field(
        default_factory=RulesSettings, description="[alerts.rules.NAME] per-rule settings"
    )


class IngestSettings(_Section):
    """What the collector accepts from a cabinet beyond the protocol's own bounds
    (server/boundary.py). A message over a limit is refused and counted against its cabinet."""

    max_slots: int = Field(
        default=64, ge=1, le=256,
        description="most slots a cabinet may report (and never more than its birth declared)")
    max_devices: int = Field(default=16, ge=1, le=32, description="most bus devices per cabinet")
    max_ahead_s: float = Field(
        default=300.0, ge=1,
        description="a message time further ahead of the receive time is replaced by it (clock skew)")
    max_age_days: float = Field(
        default=90.0, gt=0,
        description="a message time further back is replaced by the receive time; covers an "
                    "outbox replayed after the summer holidays")


class HistorySettings(_Section):
    keep_days: int = Field(default=730, ge=30, le=3660,
                           description="days of slot and cabinet changes and charge sessions kept "
                                       "(default two school years)")
    rollup_keep_days: int = Field(default=1830, ge=30, le=7320,
                                  description="days of daily roll-ups kept for the reports "
                                              "(default five years)")
    record_s: float = Field(default=5.0, gt=0, le=300,
                            description="how often the changes of the fleet are written")
    energy_price_eur_kwh: float = Field(default=0.30, ge=0, le=10,
                                        description="electricity price for the reports' cost (EUR "
                                                    "per kWh)")
    grafana_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://\S+$",
                                    description="Grafana dashboard URL; the slot page links to it "
                                                "with var-site, var-cabinet and var-slot")


class StateSettings(_Section):
    dir: Path | None = Field(
        default=None,
        description=(
            "directory of the durable state: the store (SQLite, ladewache.sqlite3: alerts, "
            "silences, notifications, users, inventory, history, events) unless [state] url names "
            "a database, and the TSDB journal; none = in memory, lost on restart"
        ),
    )
    url: SecretStr | None = Field(
        default=None,
        description=(
            "the store in PostgreSQL instead of the SQLite file: "
            "postgresql+psycopg://user:password@host:5432/ladewache (never logged)"
        ),
    )

    @field_validator("url")
    @classmethod
    def _known_database(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                check_url(value.get_secret_value())
            except StoreUrlError as exc:
                raise ValueError(str(exc)) from None
        return value


class ClusterSettings(_Section):
    """Several collectors on one shared store ([state] url, PostgreSQL): one of them leads, i.e.
    evaluates the alert rules, sends the notifications and writes the history (server/leader.py)."""

    node: str = Field(
        default_factory=socket.gethostname, min_length=1, max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="this collector's name in the lease, unique among the collectors sharing a "
                    "store (default: the host name); a collector restarted under the same name "
                    "takes its lease back at once",
    )
    lease_s: float = Field(
        default=15.0, ge=3, le=300,
        description="the leader renews its lease every lease_s / 3; when it stops renewing "
                    "(killed, frozen, cut off from the store) another collector takes over "
                    "within lease_s (a follower tries again when the lease it read ends)",
    )
    hand_over_after_s: float = Field(
        default=30.0, ge=0, le=3600,
        description="a leader that has not received from every broker of its [mqtt] for this "
                    "long steps down for a collector that does, which takes the lead at its next "
                    "lease try; 0: never. "
                    "Keep it below [notify] blind_after_s, so the teams are told only when no "
                    "collector hears",
    )


class ServerSettings(FileSettings):
    """``cabinet-server`` configuration; every section is optional."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="log level of the collector"
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="[mqtt] broker connection")
    tsdb: TsdbSettings = Field(default_factory=TsdbSettings, description="[tsdb] time-series sink")
    http: HttpSettings = Field(default_factory=HttpSettings, description="[http] API listener")
    alerts: AlertSettings = Field(default_factory=AlertSettings, description="[alerts] rules")
    ingest: IngestSettings = Field(default_factory=IngestSettings,
                                   description="[ingest] limits on what a cabinet sends")
    notify: NotifySettings = Field(
        default_factory=NotifySettings, description="[notify] grouping, SMTP, webhooks, digest"
    )
    state: StateSettings = Field(default_factory=StateSettings, description="[state] durable state")
    cluster: ClusterSettings = Field(default_factory=ClusterSettings,
                                     description="[cluster] several collectors, one leader")
    history: HistorySettings = Field(default_factory=HistorySettings,
                                     description="[history] durable history and school reports")
    organisation: Organisation = Field(
        default_factory=Organisation,
        description="[organisation] district, teams, municipalities, schools, cabinets",
    )


def load_server_settings(path: Path | None) -> ServerSettings:
    """Read the config file (or only the environment); raises ConfigError naming file and key."""
    return load_settings(ServerSettings, path)


def resolve_path(settings: ServerSettings, path: Path) -> Path:
    """A path from the config, made absolute relative to the config file's directory."""
    return settings._base_dir / path  # an absolute path stays as it is


def store_location(settings: ServerSettings) -> Path | str | None:
    """Where the store lives: ``[state] url``, else ``ladewache.sqlite3`` in the ``[state] dir``,
    else memory (None). What every command opens with ``server.store.open_store``."""
    state = settings.state
    if state.url is not None:
        return state.url.get_secret_value()
    return resolve_path(settings, state.dir) if state.dir is not None else None


def preflight(settings: ServerSettings) -> list[str]:
    """What ``run`` opens at start that the model cannot check: the TLS files, the [state] dir,
    the calendar files. One line per problem, naming the source and key; empty when all is well."""
    problems = tls_problems(settings, "mqtt", lambda path: resolve_path(settings, path))
    if settings.state.dir is not None:
        why = directory_problem(resolve_path(settings, settings.state.dir))
        if why is not None:
            problems.append(problem(settings, "state.dir", why))
    smtp = settings.notify.smtp
    if smtp.host is not None and smtp.security != "none" and smtp.ca_file is not None:
        ca_file = resolve_path(settings, smtp.ca_file)  # relative to the config, like every path
        why = file_problem(ca_file)
        if why is not None:
            problems.append(problem(settings, "notify.smtp.ca_file", f"{ca_file}: {why}"))
    org = settings.organisation
    calendars = [(f"organisation.school_holidays.{n}", path)
                 for n, path in enumerate(org.school_holidays)]
    calendars += [(f"organisation.schools.{s}.calendars.{n}", path)
                  for s, school in enumerate(org.schools) for n, path in enumerate(school.calendars)]
    for key, path in calendars:
        why = file_problem(resolve_path(settings, path))
        if why is not None:
            problems.append(problem(settings, key, f"{resolve_path(settings, path)}: {why}"))
    return problems
