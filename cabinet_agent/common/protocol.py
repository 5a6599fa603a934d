"""Wire protocol v1: the one module that agent and server share.

Every message is JSON on ``ladewache/v1/{site}/{cabinet}/{channel}``; the channel equals the
message's ``type``. The models here are the contract: ``docs/protocol.md`` explains them and
``docs/schema/v1/*.schema.json`` is generated from them (``python -m cabinet_agent.common.protocol``).
Changing a model without regenerating the schema fails the test suite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

__all__ = [
    "MAX_DEVICES",
    "MAX_PAYLOAD_BYTES",
    "MAX_POINTS",
    "MAX_SEQ",
    "MAX_SLOTS",
    "PROTOCOL_REVISION",
    "PROTOCOL_VERSION",
    "QOS",
    "RETAINED",
    "TOPIC_ROOT",
    "AgentStatus",
    "BirthMessage",
    "Certainty",
    "Channel",
    "ChargeSession",
    "DeviceHealth",
    "DoorState",
    "EnergyMethod",
    "EventKind",
    "EventMessage",
    "MainsState",
    "Message",
    "PointReading",
    "ProtocolError",
    "Sensing",
    "SessionEnd",
    "SlotInfo",
    "SlotSnapshot",
    "SlotState",
    "StateMessage",
    "StatusMessage",
    "TelemetryMessage",
    "TopicAddress",
    "decode",
    "encode",
    "json_schemas",
    "parse_topic",
    "subscription",
    "topic_for",
]

PROTOCOL_VERSION: Final = 1
# Additive revisions within v1 (new optional fields only; a v1 reader of any revision accepts every
# message): 2 added slot certainty and evidence (state, telemetry) and the cabinet's sensing (birth);
# 3 added the event counter (``event_seq``) and wrote down the bounds below; 4 extra readings per
# telemetry (``points``); 5 how a session's energy was measured (``ChargeSession.energy_method``).
PROTOCOL_REVISION: Final = 5
TOPIC_ROOT: Final = "ladewache"
# A 32-slot telemetry message is about 1.5 KiB; anything near this limit is a bug or an attack.
MAX_PAYLOAD_BYTES: Final = 64 * 1024
# Bounds every message stays within (revision 3 wrote them down; no correct agent ever exceeded
# them). A reader stores seq in a signed 64-bit integer; real cabinets have 8 to 48 slots.
MAX_SEQ: Final = 2**63 - 1
MAX_SLOTS: Final = 256
MAX_DEVICES: Final = 32
# Revision 4: extra readings per telemetry (a cabinet model's signals.points): a meter's counters,
# voltage, a climate sensor's humidity, a few per device; per-slot power belongs in power_w.
MAX_POINTS: Final = 64
_POINT_NAME = r"^[a-z][a-z0-9_]{0,63}$"  # cabinet_model.SignalRef's names, at most 64 characters

_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Identifier = Annotated[str, Field(pattern=_ID_PATTERN, description="lower-case id: a-z 0-9 _ -")]


class Channel(StrEnum):
    STATUS = "status"
    BIRTH = "birth"
    STATE = "state"
    EVENT = "event"
    TELEMETRY = "telemetry"


# Status, birth and state are retained so that a collector that starts later knows every cabinet.
RETAINED: Final = frozenset({Channel.STATUS, Channel.BIRTH, Channel.STATE})
QOS: Final = {
    Channel.STATUS: 1,
    Channel.BIRTH: 1,
    Channel.STATE: 1,
    Channel.EVENT: 1,
    # QoS 1 (issue 21): queued by the broker for a collector that is away and kept across the
    # broker's restart, so a restart loses no readings; older agents sent 0 (docs/protocol.md).
    Channel.TELEMETRY: 1,
}


class SlotState(StrEnum):
    EMPTY = "empty"
    CHARGING = "charging"
    CHARGED = "charged"
    PRESENT_IDLE = "present_idle"  # a presence input says occupied, but nothing is drawn
    FAULT = "fault"
    UNKNOWN = "unknown"  # the hardware cannot tell, or the reading is missing


class Certainty(StrEnum):
    """How sure the agent is of a slot's state (docs/classification.md)."""

    CERTAIN = "certain"  # the hardware proves it now (presence input, a draw, no door since)
    PROBABLE = "probable"  # the last proof stands, but the iPad may have left unseen since
    CANNOT_TELL = "cannot_tell"  # the hardware has no evidence either way


class DoorState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


class MainsState(StrEnum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


class AgentStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"  # only ever sent by the broker, as the agent's Last Will
    STOPPED = "stopped"  # the agent stopped on purpose (SIGTERM, shutdown)


class EventKind(StrEnum):
    SLOT_CHANGED = "slot_changed"
    DOOR_CHANGED = "door_changed"
    MAINS_CHANGED = "mains_changed"
    DEVICE_FAULT = "device_fault"
    DEVICE_RECOVERED = "device_recovered"
    SESSION_ENDED = "session_ended"


class SessionEnd(StrEnum):
    FULL = "full"  # power tapered off: the iPad is charged
    REMOVED = "removed"  # power stopped abruptly: taken out while charging
    POWER_CUT = "power_cut"  # mains or the charging window went away
    UNKNOWN = "unknown"  # the reading was lost (device fault)


class EnergyMethod(StrEnum):
    """How a session's energy was measured (docs/classification.md, "Charge sessions")."""

    COUNTER = "counter"  # the slot meter's own energy counter, over the whole session
    MIXED = "mixed"  # the counter, with steps it could not cover (reset, replaced) integrated
    INTEGRATED = "integrated"  # power integrated over time: the meter keeps no counter


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != UTC.utcoffset(None):
        raise ValueError("timestamp must be UTC with an explicit offset (…Z or +00:00)")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class _Model(BaseModel):
    # Finite numbers only: JSON has no infinity, but 1e999 parses as one.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Envelope(_Model):
    """Fields every message carries."""

    v: Literal[1] = Field(description="protocol version")
    site: Identifier = Field(description="school (site) id; equals the topic's {site}")
    cabinet: Identifier = Field(description="cabinet id within the site; equals the topic's {cabinet}")
    boot_id: str = Field(
        pattern=r"^[0-9a-f]{32}$", description="random id chosen at each agent start (uuid4 hex)"
    )
    seq: int = Field(ge=0, le=MAX_SEQ,
                     description="per-boot sequence number, +1 for every message published")
    ts: UtcDatetime = Field(description="UTC time the agent created the message")
    clock_synced: bool = Field(
        description="false while the agent's clock is not known to be synchronised (NTP)"
    )
    replayed: bool = Field(
        default=False,
        description="true when created while the broker was away, or sent again (from the agent's "
                    "outbox): ts is when it happened, not when it was sent")


class StatusMessage(_Envelope):
    """Retained. ``offline`` is the MQTT Last Will, registered at connect: its ts and seq are from then."""

    type: Literal["status"] = "status"
    status: AgentStatus
    reason: str | None = Field(default=None, max_length=200)


class SlotInfo(_Model):
    slot: int = Field(ge=1, le=MAX_SLOTS, description="slot number as labelled on the cabinet, from 1")
    asset_tag: str | None = Field(default=None, max_length=64)


class Sensing(_Model):
    """What the cabinet's hardware can observe, so that the server knows what it can be told."""

    slot_power: bool = Field(description="a power reading per slot")
    presence: bool = Field(description="a presence input (switch or plug detection) per slot")
    door: bool = Field(description="a door contact")
    evidence_window_s: float | None = Field(
        default=None, gt=0,
        description="power-only cabinets: a full iPad still in its slot tops up within this time "
                    "(from the iPads' slowest standby drain); no draw for this long is evidence "
                    "that it is gone. Wall-clock seconds, like every time on the wire (an agent "
                    "watching a simulator that runs N times faster sends the window / N)")


class BirthMessage(_Envelope):
    """Retained. What the cabinet is; sent after every connect, before state."""

    type: Literal["birth"] = "birth"
    agent_version: str = Field(min_length=1, max_length=40)
    config_hash: str = Field(pattern=r"^[0-9a-f]{8,64}$")
    cabinet_model: str = Field(min_length=1, max_length=64)
    slot_count: int = Field(ge=1, le=MAX_SLOTS)
    slots: list[SlotInfo] = Field(max_length=MAX_SLOTS)
    poll_interval_s: float = Field(gt=0)
    telemetry_interval_s: float = Field(gt=0, description="heartbeat: telemetry comes this often")
    sensing: Sensing | None = Field(default=None, description="revision 2: what the hardware sees")


class SlotSnapshot(_Model):
    slot: int = Field(ge=1, le=MAX_SLOTS)
    state: SlotState
    power_w: float | None = Field(description="last reading; null when unknown (never 0 for unknown)")
    since: UtcDatetime = Field(description="when the slot entered this state")
    fault: str | None = Field(default=None, max_length=32,
                              description="why the state is 'fault': overpower, too_long, frozen, no_topup")
    certainty: Certainty | None = Field(
        default=None, description="revision 2: how sure the state is; null from older agents")
    last_draw_at: UtcDatetime | None = Field(
        default=None, description="revision 2: last time the slot drew power (a charge or a top-up "
                                  "pulse): proof that an iPad was there")
    unseen_since: UtcDatetime | None = Field(
        default=None, description="revision 2: from this moment on the iPad may have left unseen "
                                  "(the first door opening after the last draw); null when nothing "
                                  "could have happened unseen")


class ChargeSession(_Model):
    """One charge, from the first watt to its end."""

    slot: int = Field(ge=1, le=MAX_SLOTS)
    asset_tag: str | None = Field(default=None, max_length=64)
    started_at: UtcDatetime
    ended_at: UtcDatetime
    duration_s: float = Field(
        ge=0, description="how long the charge took; ended_at - started_at, except from an agent "
                          "watching a simulator that runs faster than real time: its simulated "
                          "seconds ([simulation] speed, docs/classification.md)")
    energy_wh: float = Field(ge=0, description="AC energy drawn by the slot (see energy_method)")
    peak_w: float = Field(ge=0)
    end: SessionEnd
    taper_wh: float | None = Field(
        default=None, ge=0,
        description="energy of the taper phase (~80-100 %), proportional to battery capacity; "
                    "only for sessions that went through a whole taper and ended full")
    energy_method: EnergyMethod | None = Field(
        default=None,
        description="revision 5: how energy_wh was measured: the meter's energy counter, or power "
                    "integrated over time; null from older agents (they integrated)")


class DeviceHealth(_Model):
    name: str = Field(min_length=1, max_length=64)
    ok: bool
    error: str | None = Field(default=None, max_length=200)


class StateMessage(_Envelope):
    """Retained snapshot of the whole cabinet; sent on connect and on every change."""

    type: Literal["state"] = "state"
    slots: list[SlotSnapshot] = Field(max_length=MAX_SLOTS)
    door: DoorState
    temperature_c: float | None
    mains: MainsState
    devices: list[DeviceHealth] = Field(max_length=MAX_DEVICES)


class EventMessage(_Envelope):
    """One change, as it happened. Not retained."""

    type: Literal["event"] = "event"
    event: EventKind
    slot: int | None = Field(default=None, ge=1, le=MAX_SLOTS)
    device: str | None = Field(default=None, min_length=1, max_length=64)
    old: str | None = Field(default=None, max_length=32)
    new: str | None = Field(default=None, max_length=32)
    power_w: float | None = None
    detail: str | None = Field(default=None, max_length=200)
    door: DoorState | None = Field(
        default=None, description="door state when the change happened; a slot change with the door "
                                  "closed is suspicious (a cable pulled, a fault)")
    session: ChargeSession | None = Field(default=None, description="with event session_ended")
    event_seq: int | None = Field(
        default=None, ge=1, le=MAX_SEQ,
        description="revision 3: this event's number within the boot (1, 2, 3 …; events only). A "
                    "number missing once the agent's outbox is empty was lost: docs/reliability.md")


class PointReading(_Model):
    """Revision 4: one extra reading of a device (an energy counter, voltage, humidity …), raw as
    the device gave it in the profile's unit; only finite numbers, unknown readings are left out."""

    device: str = Field(pattern=_POINT_NAME, description="device name in the cabinet model")
    point: str = Field(pattern=_POINT_NAME, description="point name in the device's profile")
    channel: int | None = Field(default=None, ge=0, le=MAX_SLOTS,
                                description="index of the channel for a point with several; null "
                                            "for a single value")
    value: float
    unit: str = Field(default="", max_length=16, description="the profile's unit, e.g. kWh, V, %")


class TelemetryMessage(_Envelope):
    """Periodic readings; doubles as the heartbeat. QoS 1 (0 from agents before issue 21)."""

    type: Literal["telemetry"] = "telemetry"
    power_w: list[float | None] = Field(
        max_length=MAX_SLOTS, description="per slot, index 0 is slot 1; null = unknown")
    states: list[SlotState] = Field(max_length=MAX_SLOTS, description="per slot, index 0 is slot 1")
    certainty: list[Certainty] | None = Field(
        default=None, max_length=MAX_SLOTS,
        description="revision 2: per slot, index 0 is slot 1; null from older agents")
    temperature_c: float | None
    door: DoorState
    mains: MainsState
    devices: list[DeviceHealth] = Field(max_length=MAX_DEVICES)
    poll_ms: float | None = Field(default=None, ge=0, description="duration of the last poll cycle")
    outbox_queued: int | None = Field(
        default=None, ge=0, description="messages waiting in the agent's outbox (not yet acknowledged)")
    outbox_dropped: int | None = Field(
        default=None, ge=0,
        description="messages the outbox dropped because it was full, since it was created (telemetry "
                    "first, events last): data the server will never see")
    event_seq: int | None = Field(
        default=None, ge=0, le=MAX_SEQ,
        description="revision 3: how many events this boot has created so far (the newest "
                    "event_seq); with outbox_queued = 0 every one of them has left the agent")
    points: list[PointReading] | None = Field(
        default=None, max_length=MAX_POINTS,
        description="revision 4: extra readings the cabinet model names (signals.points); absent "
                    "when it names none")


Message = Annotated[
    StatusMessage | BirthMessage | StateMessage | EventMessage | TelemetryMessage,
    Field(discriminator="type"),
]
_MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)
_MODELS: Final[dict[Channel, type[_Envelope]]] = {
    Channel.STATUS: StatusMessage,
    Channel.BIRTH: BirthMessage,
    Channel.STATE: StateMessage,
    Channel.EVENT: EventMessage,
    Channel.TELEMETRY: TelemetryMessage,
}


@dataclass(frozen=True, slots=True)
class TopicAddress:
    site: str
    cabinet: str
    channel: Channel


class ProtocolError(ValueError):
    """A message that does not follow the protocol. ``reason`` is a short, countable label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def topic_for(site: str, cabinet: str, channel: Channel) -> str:
    return f"{TOPIC_ROOT}/v{PROTOCOL_VERSION}/{site}/{cabinet}/{channel.value}"


def subscription() -> str:
    """The collector's subscription: every channel of every cabinet of this protocol version."""
    return f"{TOPIC_ROOT}/v{PROTOCOL_VERSION}/+/+/+"


def parse_topic(topic: str) -> TopicAddress:
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != TOPIC_ROOT or parts[1] != f"v{PROTOCOL_VERSION}":
        raise ProtocolError("unknown_topic", topic[:200])
    try:
        channel = Channel(parts[4])
    except ValueError:
        raise ProtocolError("unknown_topic", topic[:200]) from None
    return TopicAddress(parts[2], parts[3], channel)


def encode(message: _Envelope) -> bytes:
    return message.model_dump_json(exclude_none=False).encode()


def decode(topic: str, payload: bytes) -> Message:
    """Validate one MQTT message; raises ProtocolError with a countable reason."""
    address = parse_topic(topic)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("too_large", f"{len(payload)} bytes on {topic[:200]}")
    try:
        # Parsed and validated in one pass by pydantic-core: a third of the CPU of json.loads
        # followed by validate_python on the collector's hot path.
        message = _MESSAGE_ADAPTER.validate_json(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise ProtocolError("bad_json", f"{topic[:200]}: {first['msg']}") from None
        if first["type"] == "dict_type" and not first["loc"]:
            raise ProtocolError("schema", f"{topic[:200]}: payload is not a JSON object") from None
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolError("schema", f"{topic[:200]}: {where}: {first['msg']}") from None
    if message.type != address.channel.value:
        raise ProtocolError("topic_mismatch", f"type {message.type} on channel {address.channel}")
    if message.site != address.site or message.cabinet != address.cabinet:
        raise ProtocolError(
            "topic_mismatch",
            f"payload names {message.site}/{message.cabinet} on topic {topic[:200]}",
        )
    return message


def json_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per channel plus the union of all messages."""
    schemas: dict[str, dict[str, Any]] = {}
    for channel, model in _MODELS.items():
        schema = model.model_json_schema()
        schema["$id"] = f"https://ladewache.example/schema/v1/{channel.value}.schema.json"
        schemas[channel.value] = schema
    union = _MESSAGE_ADAPTER.json_schema()
    union["$id"] = "https://ladewache.example/schema/v1/message.schema.json"
    union["title"] = "Ladewache v1 message"
    schemas["message"] = union
    return schemas


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def utcnow() -> datetime:
    return datetime.now(UTC)


if __name__ == "__main__":  # python -m cabinet_agent.common.protocol [DIR]
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schema/v1")
    for written_path in write_schemas(target):
        print(written_path)
