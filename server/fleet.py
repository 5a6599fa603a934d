"""Fleet state: what the collector knows about every cabinet, built from protocol messages.

``Fleet.apply`` is called from the MQTT network thread, ``Fleet.snapshot`` from the API and the alert
engine; records are immutable values replaced under one lock, so a snapshot is never half-updated.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, NamedTuple

from cabinet_agent.protocol import (
    AgentStatus,
    BirthMessage,
    DeviceHealth,
    DoorState,
    EventMessage,
    MainsState,
    Message,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
)

from .integrity import CabinetIntegrity

NO_INTEGRITY: Final = CabinetIntegrity()

__all__ = ["BootChange", "CabinetKey", "CabinetView", "DeviceView", "Fleet", "FleetStatus", "SlotView"]

# Enough to see a pattern of power losses, small enough to never matter for memory.
MAX_BOOT_CHANGES: Final = 10


class FleetStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"  # the agent's Last Will
    STOPPED = "stopped"  # the agent said it stopped on purpose
    UNKNOWN = "unknown"  # no status message seen yet


CabinetKey = tuple[str, str]  # (site, cabinet)


class SlotView(NamedTuple):
    # A NamedTuple, not a frozen dataclass: one is built per slot per telemetry message, and
    # tuple construction is several times cheaper on this hot path.
    slot: int
    asset_tag: str | None = None
    state: SlotState = SlotState.UNKNOWN
    power_w: float | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeviceView:
    name: str
    ok: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class BootChange:
    """The agent came back with a new boot_id. ``after_offline``: it had been offline (Last Will)
    or stopped first, which together with the gap tells a power loss from a network loss."""

    previous_boot_id: str
    boot_id: str
    seen_at: datetime
    after_offline: bool
    offline_since: datetime | None


@dataclass(frozen=True, slots=True)
class CabinetView:
    site: str
    cabinet: str
    first_seen_at: datetime
    last_seen_at: datetime  # server receive time of the last message of any kind
    last_message_ts: datetime  # the agent's ts of that message
    status: FleetStatus = FleetStatus.UNKNOWN
    status_reason: str | None = None
    status_since: datetime | None = None
    boot_id: str | None = None
    agent_version: str | None = None
    model: str | None = None
    config_hash: str | None = None
    slot_count: int | None = None
    telemetry_interval_s: float | None = None
    poll_interval_s: float | None = None
    slots: tuple[SlotView, ...] = ()
    door: DoorState = DoorState.UNKNOWN
    mains: MainsState = MainsState.UNKNOWN
    temperature_c: float | None = None
    devices: tuple[DeviceView, ...] = ()
    boot_changes: tuple[BootChange, ...] = ()
    last_seq: int | None = None  # seq of the newest message of this boot folded in
    integrity: CabinetIntegrity = NO_INTEGRITY
    stale: int = 0  # older messages (replays) that did not overwrite newer state

    @property
    def key(self) -> CabinetKey:
        return (self.site, self.cabinet)

    @property
    def asset_tags(self) -> Mapping[int, str]:
        return {s.slot: s.asset_tag for s in self.slots if s.asset_tag}


class Fleet:
    """Thread-safe map of cabinets. The receive time is passed in, so this stays clock-free."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cabinets: dict[CabinetKey, CabinetView] = {}

    def apply(self, message: Message, received_at: datetime,
              integrity: CabinetIntegrity | None = None) -> CabinetView:
        """Fold one valid message into the cabinet's record and return the new record. A message
        older than what the record holds (a replay from the agent's outbox) never regresses it."""
        key = (message.site, message.cabinet)
        with self._lock:
            old = self._cabinets.get(key)
            if old is None:
                old = CabinetView(message.site, message.cabinet, received_at, received_at, message.ts)
            if _is_older(old, message):
                new = dataclasses.replace(old, last_seen_at=received_at, stale=old.stale + 1)
            else:
                new = _fold(old, message, received_at)
            if integrity is not None:
                new = dataclasses.replace(new, integrity=integrity)
            self._cabinets[key] = new
            return new

    def get(self, site: str, cabinet: str) -> CabinetView | None:
        with self._lock:
            return self._cabinets.get((site, cabinet))

    def snapshot(self) -> list[CabinetView]:
        """Every cabinet, sorted by site and cabinet."""
        with self._lock:
            views = list(self._cabinets.values())
        return sorted(views, key=lambda v: v.key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cabinets)


def _is_older(old: CabinetView, message: Message) -> bool:
    """Older than the record: an earlier seq of this boot, a message of a boot that was replaced,
    or a replay from an unknown boot with an older timestamp (the collector started meanwhile)."""
    if old.boot_id is None:
        return False
    if isinstance(message, StatusMessage) and message.status is AgentStatus.OFFLINE:
        return False  # the Last Will's seq is from connect time; _is_stale_will judges it
    if message.boot_id == old.boot_id:
        return old.last_seq is not None and message.seq < old.last_seq
    if any(change.previous_boot_id == message.boot_id for change in old.boot_changes):
        return True
    return message.replayed and message.ts < old.last_message_ts


def _fold(old: CabinetView, message: Message, received_at: datetime) -> CabinetView:
    changes: dict[str, object] = {"last_seen_at": received_at, "last_message_ts": message.ts,
                                  "last_seq": message.seq}
    if message.boot_id == old.boot_id and old.last_seq is not None:
        changes["last_seq"] = max(old.last_seq, message.seq)
    if old.boot_id is None:
        changes["boot_id"] = message.boot_id
    elif message.boot_id != old.boot_id and not _is_stale_will(old, message):
        changes["boot_id"] = message.boot_id
        offline = old.status in (FleetStatus.OFFLINE, FleetStatus.STOPPED)
        change = BootChange(old.boot_id, message.boot_id, received_at, offline,
                            old.status_since if offline else None)
        changes["boot_changes"] = (*old.boot_changes, change)[-MAX_BOOT_CHANGES:]
    if isinstance(message, StatusMessage):
        changes.update(_status(old, message, received_at))
    elif isinstance(message, BirthMessage):
        changes.update(_birth(old, message))
    elif isinstance(message, StateMessage):
        changes.update(_state(old, message))
    elif isinstance(message, TelemetryMessage):
        changes.update(_telemetry(old, message))
    elif isinstance(message, EventMessage):
        pass  # the state message that follows every change carries the result
    return dataclasses.replace(old, **changes)  # type: ignore[arg-type]


def _is_stale_will(old: CabinetView, message: Message) -> bool:
    """A Last Will of an earlier boot, arriving after the new boot said it is online."""
    return (
        isinstance(message, StatusMessage)
        and message.status is AgentStatus.OFFLINE
        and old.status is FleetStatus.ONLINE
        and message.boot_id != old.boot_id
    )


def _status(old: CabinetView, message: StatusMessage, received_at: datetime) -> dict[str, object]:
    if _is_stale_will(old, message):
        return {}
    status = FleetStatus(message.status.value)
    changes: dict[str, object] = {"status": status, "status_reason": message.reason}
    if status is not old.status:
        changes["status_since"] = received_at
    return changes


def _birth(old: CabinetView, message: BirthMessage) -> dict[str, object]:
    tags = {info.slot: info.asset_tag for info in message.slots}
    current = {s.slot: s for s in old.slots}
    slots = tuple(
        current.get(n, SlotView(n))._replace(asset_tag=tags.get(n))
        for n in range(1, message.slot_count + 1)
    )
    return {
        "agent_version": message.agent_version,
        "model": message.cabinet_model,
        "config_hash": message.config_hash,
        "slot_count": message.slot_count,
        "telemetry_interval_s": message.telemetry_interval_s,
        "poll_interval_s": message.poll_interval_s,
        "slots": slots,
    }


def _devices(devices: list[DeviceHealth]) -> tuple[DeviceView, ...]:
    return tuple(DeviceView(d.name, d.ok, d.error) for d in devices)


def _state(old: CabinetView, message: StateMessage) -> dict[str, object]:
    current = {s.slot: s for s in old.slots}
    for snap in message.slots:
        base = current.get(snap.slot)
        tag = base.asset_tag if base is not None else None
        current[snap.slot] = SlotView(snap.slot, tag, snap.state, snap.power_w, snap.since)
    return {
        "slots": tuple(current[n] for n in sorted(current)),
        "door": message.door,
        "mains": message.mains,
        "temperature_c": message.temperature_c,
        "devices": _devices(message.devices),
    }


def _telemetry(old: CabinetView, message: TelemetryMessage) -> dict[str, object]:
    current = {s.slot: s for s in old.slots}
    powers = message.power_w
    for index, state in enumerate(message.states):
        number = index + 1
        power = powers[index] if index < len(powers) else None
        base = current.get(number)
        if base is None:
            current[number] = SlotView(number, None, state, power, message.ts)
        else:
            since = base.since if base.state is state and base.since is not None else message.ts
            current[number] = SlotView(number, base.asset_tag, state, power, since)
    return {
        "slots": tuple(current[n] for n in sorted(current)),
        "door": message.door,
        "mains": message.mains,
        "temperature_c": message.temperature_c,
        "devices": _devices(message.devices),
    }
