"""The agent's configuration: one TOML file, ``LADEWACHE_…`` environment overrides.

Every key is described here once; ``deploy/examples/agent.toml`` is checked against this model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .common.broker_address import BrokerAddress, check_broker_list, parse_broker
from .common.configfile import FileSettings, directory_problem, load_settings, problem, tls_problems
from .common.errors import UNION_TAG_MARK
from .common.mqtt_security import check_transport_security
from .ha_discovery import HomeAssistantSection
from .outbox_settings import OutboxSection, default_outbox_path
from .windows import ChargingWindows

__all__ = [
    "AgentSettings",
    "AnyBus",
    "CabinetSection",
    "DeviceOptions",
    "LineBus",
    "MqttSection",
    "OutboxSection",
    "PollingSection",
    "RtuBus",
    "SerialBus",
    "SimulationSection",
    "TcpBus",
    "load",
    "preflight",
]

_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CabinetSection(_Section):
    """Who this agent is. No defaults: an agent that ran with a default identity would publish
    as another cabinet (or as every other unconfigured one) and poll hardware it does not have."""

    site: str = Field(pattern=_ID, description="school id, part of every topic (required)")
    id: str = Field(pattern=_ID, description="cabinet id within the school (required)")
    model: str = Field(
        description="shipped cabinet model name, or path to a model .toml (relative to this file) "
                    "(required)",
    )
    asset_tags: dict[int, str] = Field(
        default_factory=dict,
        description="ignored (kept so that an older agent.toml still loads): asset tags live in "
                    "the server's inventory, see docs/inventory.md",
    )


BAUD_RATES = (1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400)


def _reopen_delays(section: Any) -> None:
    if section.reopen_max_s < section.reopen_min_s:
        raise ValueError("reopen_max_s must be >= reopen_min_s")


class TcpBus(_Section):
    """Modbus TCP: a cabinet's Modbus TCP module, or an RS-485 gateway."""

    transport: Literal["tcp"] = Field(default="tcp", description="tcp, rtu or line")
    host: str = Field(default="127.0.0.1", description="Modbus TCP server or RS-485 gateway")
    port: int = Field(default=502, ge=1, le=65535)
    timeout_s: float = Field(default=0.5, gt=0, le=30,
                             description="how long a device may take to answer one request")
    retries: int = Field(default=1, ge=0, le=5,
                         description="requests repeated after a timeout before the device is failed")
    reopen_min_s: float = Field(default=1.0, gt=0, le=600,
                                description="first delay before reconnecting to an unreachable host")
    reopen_max_s: float = Field(default=30.0, gt=0, le=3600, description="longest such delay")

    @model_validator(mode="after")
    def _delays(self) -> TcpBus:
        _reopen_delays(self)
        return self


class SerialBus(_Section):
    """What every serial transport shares: the port and its framing."""

    port: str = Field(
        description="serial device: a path such as /dev/ttyUSB0, better a /dev/serial/by-id/… link "
                    "(stable across replugging), or a glob such as /dev/ttyUSB* that must match "
                    "exactly one device; resolved again on every reopen")
    baudrate: int = Field(default=9600, description=f"one of {', '.join(map(str, BAUD_RATES))}")
    parity: Literal["N", "E", "O"] = Field(default="N", description="N none, E even, O odd")
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    reopen_min_s: float = Field(default=1.0, gt=0, le=600,
                                description="first delay before reopening a vanished adapter")
    reopen_max_s: float = Field(default=30.0, gt=0, le=3600, description="longest such delay")

    @field_validator("baudrate")
    @classmethod
    def _baudrate(cls, value: int) -> int:
        if value not in BAUD_RATES:
            raise ValueError(f"{value} is not one of {', '.join(map(str, BAUD_RATES))}")
        return value

    @model_validator(mode="after")
    def _delays(self) -> SerialBus:
        _reopen_delays(self)
        return self

    @property
    def bits_per_char(self) -> int:
        """Start bit + data bits + parity bit + stop bits."""
        return 1 + self.bytesize + (self.parity != "N") + self.stopbits


class RtuBus(SerialBus):
    """Modbus RTU on RS-485 through a USB adapter: several devices, one request at a time."""

    transport: Literal["rtu"] = Field(description="tcp, rtu or line")
    timeout_s: float = Field(
        default=0.1, gt=0, le=30,
        description="how long a device may take to start answering; the agent adds the time the "
                    "request and the reply need on the wire at this baud rate")
    retries: int = Field(default=1, ge=0, le=5,
                         description="requests repeated after a timeout or CRC error")


class LineBus(SerialBus):
    """A microcontroller board that sends readings as lines (docs/serial-line-protocol.md)."""

    transport: Literal["line"] = Field(description="tcp, rtu or line")
    baudrate: int = Field(default=115200, description=f"one of {', '.join(map(str, BAUD_RATES))}")


def _transport_of(value: Any) -> str:
    transport = value.get("transport", "tcp") if isinstance(value, dict) \
        else getattr(value, "transport", None)
    return f"{UNION_TAG_MARK}{transport}"


AnyBus: TypeAlias = Annotated[
    Annotated[TcpBus, Tag(f"{UNION_TAG_MARK}tcp")]
    | Annotated[RtuBus, Tag(f"{UNION_TAG_MARK}rtu")]
    | Annotated[LineBus, Tag(f"{UNION_TAG_MARK}line")],
    Discriminator(_transport_of, custom_error_type="transport",
                  custom_error_message="transport must be 'tcp', 'rtu' or 'line'"),
]


def _default_buses() -> dict[str, TcpBus | RtuBus | LineBus]:
    return {"main": TcpBus()}


class DeviceOptions(_Section):
    """Per-device overrides of the bus's settings, keyed by the cabinet model's device name."""

    timeout_s: float | None = Field(default=None, gt=0, le=30,
                                    description="this device's answer time (default: the bus's)")
    retries: int | None = Field(default=None, ge=0, le=5, description="default: the bus's")


class MqttSection(_Section):
    host: str = Field(default="127.0.0.1", description="broker host")
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive; the broker "
                             "sends the Last Will after 1.5 x this without traffic")
    tls: bool = Field(default=False, description="connect with TLS")
    ca_file: Path | None = Field(default=None, description="CA bundle for TLS (relative to this file)")
    cert_file: Path | None = Field(default=None, description="client certificate for TLS, optional")
    key_file: Path | None = Field(default=None, description="its private key (default: in cert_file)")
    allow_plaintext: bool = Field(
        default=False, description="allow plain MQTT (tls = false) to a host that is not loopback; "
                                   "the password then crosses the network readable")
    failover: list[str] = Field(
        default_factory=list,
        description="further brokers, tried in this order after host:port when it cannot be "
                    "reached or its connection breaks: \"host\" or \"host:port\" (IPv6: "
                    "\"[fd00::2]:8883\"), the port defaulting to port; the same login, TLS files and "
                    "client id for each. The agent stays on the broker it reached until that "
                    "connection breaks (docs/reliability.md, broker failover)")
    client_id: str | None = Field(default=None, description="default: ladewache-<site>-<cabinet>; "
                                  "the shipped broker config replaces it by the username")
    reconnect_min_s: float = Field(
        default=1.0, gt=0, description="first reconnect delay; a connection that breaks sooner "
                                       "than this after it was made counts as a failed attempt")
    reconnect_max_s: float = Field(
        default=60.0, gt=0, description="longest reconnect delay (waited once per round of brokers)")

    @field_validator("failover")
    @classmethod
    def _failover(cls, entries: list[str], info: ValidationInfo) -> list[str]:
        # Checked here, not in the model validator, so that an error names mqtt.failover. The keys
        # it compares with come first in the class, so they are in info.data when they are valid.
        check_broker_list(entries, info.data)
        return entries

    @model_validator(mode="after")
    def _delays(self) -> MqttSection:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        check_transport_security(self.host, self.tls, self.allow_plaintext,
                                 self.cert_file, self.key_file)
        return self

    @property
    def brokers(self) -> tuple[BrokerAddress, ...]:
        """host:port first, then the failover brokers in their order."""
        return (BrokerAddress(self.host, self.port),
                *(parse_broker(entry, self.port) for entry in self.failover))


class PollingSection(_Section):
    interval_s: float = Field(default=1.0, ge=0.05, le=3600, description="one poll cycle this often")
    telemetry_interval_s: float = Field(
        default=10.0, ge=0.1, le=3600, description="telemetry (the heartbeat) this often"
    )


class ClockSection(_Section):
    trust_system_clock: bool = Field(
        default=False,
        description="take the system clock as synchronised although neither systemd-timesyncd nor "
                    "the kernel says so: a VM or container whose host keeps the time. Messages "
                    "then carry clock_synced = true and are stored at their own time")


class ChargingSection(_Section):
    windows: list[str] = Field(
        default_factory=list,
        description="local times the cabinet supplies its slots, e.g. [\"22:00-06:00\"] for a night "
                    "timer; empty = always. Outside, no slot is expected to draw")
    timezone: str = Field(default="Europe/Berlin", description="time zone of the windows")

    @model_validator(mode="after")
    def _parse(self) -> ChargingSection:
        ChargingWindows.parse(self.windows, self.timezone)  # raises naming the bad window
        return self

    def parsed(self) -> ChargingWindows:
        return ChargingWindows.parse(self.windows, self.timezone)


class SimulationSection(_Section):
    """Only for an agent that watches a simulated cabinet (demos, tests): a real cabinet keeps 1."""

    speed: float = Field(
        default=1.0, gt=0, le=100_000,
        description="seconds of the cabinet's clock per wall-clock second: the simulator's "
                    "--speed. The agent then counts durations (a session's duration and "
                    "integrated energy, the evidence window, the charge-time limit) in the "
                    "simulation's seconds; every time it publishes stays on the wall clock")


class AgentSettings(FileSettings):
    cabinet: CabinetSection = Field(description="[cabinet] site, id and model (required)")
    buses: dict[str, AnyBus] = Field(
        default_factory=_default_buses,
        description="named buses; the cabinet model's devices name the bus they sit on",
    )
    devices: dict[str, DeviceOptions] = Field(
        default_factory=dict, description="per-device timeout_s / retries, by device name")
    mqtt: MqttSection = MqttSection()
    polling: PollingSection = PollingSection()
    charging: ChargingSection = ChargingSection()
    clock: ClockSection = ClockSection()
    outbox: OutboxSection = OutboxSection()
    home_assistant: HomeAssistantSection = HomeAssistantSection()
    simulation: SimulationSection = SimulationSection()

    @model_validator(mode="before")
    @classmethod
    def _cabinet_keys_one_by_one(cls, data: Any) -> Any:
        # Without a [cabinet] section, name each missing key (site, id, model), not the section.
        if isinstance(data, dict) and "cabinet" not in data:
            return {**data, "cabinet": {}}
        return data

    def resolve(self, path: Path | None) -> Path | None:
        """A path from the config, relative to the config file's folder."""
        if path is None or path.is_absolute():
            return path
        return self.base_dir / path

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def outbox_path(self) -> Path:
        if self.outbox.path is not None:
            return self.base_dir / self.outbox.path
        return default_outbox_path(self.cabinet.site, self.cabinet.id)

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"ladewache-{self.cabinet.site}-{self.cabinet.id}"


def load(path: Path | None) -> AgentSettings:
    settings = load_settings(AgentSettings, path)
    # A relative serial port (a simulator's pty link, say) is relative to the config file, like
    # every other path in it, not to whatever directory the agent was started from.
    moved = {name: bus.model_copy(update={"port": str(settings.base_dir / bus.port)})
             for name, bus in settings.buses.items()
             if isinstance(bus, SerialBus) and not Path(bus.port).is_absolute()}
    return settings.model_copy(update={"buses": {**settings.buses, **moved}}) if moved else settings


def preflight(settings: AgentSettings) -> list[str]:
    """What ``run`` opens at start that the model cannot check: the TLS files and the outbox's
    directory. One line per problem, naming the source and key; empty when all is well."""
    problems = tls_problems(settings, "mqtt", settings.base_dir.joinpath)
    path = settings.outbox_path()
    why = directory_problem(path.parent)
    if why is None and os.path.isdir(path):
        why = "is a directory, not the outbox file"
    elif why is None and os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        why = "not writable for this user"
    if why is not None:
        given = "" if settings.outbox.path is not None else " (the default; set outbox.path)"
        problems.append(problem(settings, "outbox.path", f"{path}{given}: {why}"))
    return problems
