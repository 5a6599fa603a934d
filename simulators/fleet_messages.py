"""Pre-encoded protocol messages for the lightweight publishers that stand in for agents.

Each template is built once from the protocol's own models and ``encode`` with sentinel values
for ``seq`` and the time (``ts``, and a state's ``since``: a slot changed just now), which
``render`` replaces; everything else is byte-for-byte what an agent
sends. ``tests/unit/test_fleet_messages.py`` decodes rendered messages with
``cabinet_agent.common.protocol.decode``.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cabinet_agent import __version__
from cabinet_agent.common.protocol import (
    PROTOCOL_VERSION,
    QOS,
    RETAINED,
    AgentStatus,
    BirthMessage,
    Channel,
    DeviceHealth,
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
    encode,
    topic_for,
)

from .fleet_plan import CabinetPlan

__all__ = ["CabinetTemplates", "MessageTemplate", "iso_ts"]

_SEQ = 987_654_321_987  # sentinels: values no real message of a short run carries
_TS = datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
_TS_TEXT = b'"2001-02-03T04:05:06.789000Z"'
_DEVICES = ("meter", "io", "climate")
VARIANTS = 4  # telemetry and event payloads per cabinet, rotated


def iso_ts(epoch_s: float) -> str:
    """UTC time as the protocol writes it, e.g. 2026-11-29T10:00:00.123000Z."""
    micros = int(epoch_s * 1_000_000) % 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s)) + f".{micros:06d}Z"


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    topic: str
    qos: int
    retain: bool
    _head: bytes  # before seq
    _pieces: tuple[bytes, ...]  # the rest, split where the time goes (ts, and since in a state)

    @classmethod
    def of(cls, message: Any) -> MessageTemplate:
        payload = encode(message)
        head, rest = payload.split(b'"seq":%d' % _SEQ)
        channel = Channel(message.type)
        return cls(topic_for(message.site, message.cabinet, channel), QOS[channel],
                   channel in RETAINED, head, tuple(rest.split(_TS_TEXT)))

    def render(self, seq: int, ts: str) -> bytes:
        quoted = b'"%s"' % ts.encode()
        return b'%s"seq":%d%s' % (self._head, seq, quoted.join(self._pieces))


class CabinetTemplates:
    """Every message one cabinet's agent would send, as templates, plus its sequence counter."""

    def __init__(self, plan: CabinetPlan, *, telemetry_interval_s: float = 60.0) -> None:
        self.plan = plan
        self.boot_id = uuid.uuid4().hex
        self.seq = 0
        rng = random.Random(plan.seed)
        env: dict[str, Any] = {"v": PROTOCOL_VERSION, "site": plan.site, "cabinet": plan.cabinet,
               "boot_id": self.boot_id, "seq": _SEQ, "ts": _TS, "clock_synced": True}
        n = plan.slots
        devices = [DeviceHealth(name=d, ok=True) for d in _DEVICES]
        self.status = MessageTemplate.of(StatusMessage(**env, status=AgentStatus.ONLINE))
        self.birth = MessageTemplate.of(BirthMessage(
            **env, agent_version=__version__, config_hash="0123abcd", cabinet_model=plan.model,
            slot_count=n, slots=[SlotInfo(slot=i, asset_tag=f"{plan.asset_prefix}{i:03d}")
                                 for i in range(1, n + 1)],
            poll_interval_s=1.0, telemetry_interval_s=telemetry_interval_s))
        states = [rng.choice((SlotState.CHARGING, SlotState.CHARGED, SlotState.EMPTY))
                  for _ in range(n)]
        self.state = MessageTemplate.of(StateMessage(
            **env, slots=[SlotSnapshot(slot=i + 1, state=s, power_w=_power(s, rng), since=_TS)
                          for i, s in enumerate(states)],
            door=DoorState.CLOSED, temperature_c=23.5, mains=MainsState.ON, devices=devices))
        self.telemetry = [MessageTemplate.of(TelemetryMessage(
            **env, power_w=[_power(s, rng) for s in states], states=states,
            temperature_c=round(rng.uniform(20, 30), 1), door=DoorState.CLOSED, mains=MainsState.ON,
            devices=devices, poll_ms=round(rng.uniform(20, 40), 2))) for _ in range(VARIANTS)]
        self.events = [MessageTemplate.of(EventMessage(
            **env, event=EventKind.SLOT_CHANGED, slot=rng.randint(1, n), old=SlotState.CHARGING,
            new=SlotState.EMPTY, power_w=0.0, door=DoorState.OPEN)) for _ in range(VARIANTS)]

    def next_seq(self) -> int:
        seq, self.seq = self.seq, self.seq + 1
        return seq


def _power(state: SlotState, rng: random.Random) -> float:
    if state is SlotState.CHARGING:
        return round(rng.uniform(8.0, 21.0), 2)
    if state is SlotState.CHARGED:
        return round(rng.uniform(0.0, 0.6), 2)
    return 0.0
