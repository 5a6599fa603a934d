"""Fleet state: what the collector knows about every cabinet, built from protocol messages.

``Fleet.apply`` is called from the MQTT network thread, ``Fleet.snapshot`` from the API and the alert
engine; records are immutable values replaced under one lock, so a snapshot is never half-updated.
Every replacement bumps the fleet's ``version``; ``changed_since`` returns the cabinets replaced
after a given version, so periodic work (alert rules, the dashboard's history) touches only what
changed instead of sweeping 80,000 cabinets every second (bench/fleet_capacity.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from itertools import chain, count, repeat
from typing import Final, NamedTuple

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Certainty,
    DeviceHealth,
    DoorState,
    EventMessage,
    MainsState,
    Message,
    Sensing,
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
    # Protocol revision 2 (None from older agents): how sure the state is, the last proof of an
    # iPad (a draw), and since when it may have left unseen (docs/classification.md).
    certainty: Certainty | None = None
    last_draw_at: datetime | None = None
    unseen_since: datetime | None = None
    fault: str | None = None  # why the state is ``fault`` (overpower, too_long, frozen, no_topup)


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


class CabinetView(NamedTuple):
    """One cabinet as the collector knows it: an immutable value, replaced with every message.
    A NamedTuple, not a frozen dataclass: one is made per message, and a frozen dataclass's
    ``__init__`` (an ``object.__setattr__`` per field, 27 of them) cost more than the rest of
    folding a telemetry message in but its slots (bench/ingest_ceiling.py)."""

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
    sensing: Sensing | None = None  # what the hardware can observe (birth, revision 2)
    slots: tuple[SlotView, ...] = ()
    door: DoorState = DoorState.UNKNOWN
    mains: MainsState = MainsState.UNKNOWN
    temperature_c: float | None = None
    devices: tuple[DeviceView, ...] = ()
    boot_changes: tuple[BootChange, ...] = ()
    last_seq: int | None = None  # seq of the newest message of this boot folded in
    integrity: CabinetIntegrity = NO_INTEGRITY
    stale: int = 0  # older messages (replays) that did not overwrite newer state
    # seq of the message (state or telemetry, this boot) the slot states come from: a retained
    # state delivered after a collector restart must not undo newer telemetry.
    slots_seq: int | None = None
    # seqs of the last two "online" statuses of this boot (each connection's first message): a
    # Last Will older than the one before the last was registered for a connection the agent has
    # replaced since, at this broker or another one (``_is_stale_will``).
    online_seqs: tuple[int, ...] = ()
    online_retained: bool = False  # the newest of them came from a broker's store (a subscribe)

    @property
    def key(self) -> CabinetKey:
        return (self.site, self.cabinet)

    @property
    def asset_tags(self) -> Mapping[int, str]:
        return {s.slot: s.asset_tag for s in self.slots if s.asset_tag}


TagSource = Callable[[str, str], Mapping[int, str]]  # (site, cabinet) -> slot -> asset tag
# (the record replaced, None for a cabinet new to this fleet; the new record; when or None)
Observer = Callable[["CabinetView | None", "CabinetView", "datetime | None"], None]
_NO_TAGS: Final[Mapping[int, str]] = {}


def _no_tags(_site: str, _cabinet: str) -> Mapping[int, str]:
    return _NO_TAGS


class Fleet:
    """Thread-safe map of cabinets. The receive time is passed in, so this stays clock-free.

    A slot's ``asset_tag`` comes from ``tags`` (the inventory, ``server.assets``), never from the
    cabinet: it is set when a cabinet's slots are first built (its birth) and again by ``retag``
    when the inventory changes.

    ``observer`` sees every replacement (old record, new record), under the fleet's lock: it must
    only look and queue (the durable history, ``server.history.recorder``)."""

    def __init__(self, tags: TagSource = _no_tags, observer: Observer | None = None) -> None:
        self._tags = tags
        self._observer = observer
        self._lock = threading.Lock()
        self._cabinets: dict[CabinetKey, CabinetView] = {}
        self._version = 0
        # key -> version of its last change, in order of change (a key moves to the end).
        self._changed: dict[CabinetKey, int] = {}

    def apply(self, message: Message, received_at: datetime,
              integrity: CabinetIntegrity | None = None, retained: bool = False) -> CabinetView:
        """Fold one valid message into the cabinet's record and return the new record. A message
        older than what the record holds (a replay from the agent's outbox) never regresses it.
        ``retained``: delivered from the broker's store on subscribing (see ``_is_older``)."""
        key = (message.site, message.cabinet)
        with self._lock:
            old = known = self._cabinets.get(key)
            if old is None:
                old = CabinetView(message.site, message.cabinet, received_at, received_at, message.ts)
            changes: dict[str, object]
            if isinstance(message, TelemetryMessage) and message.boot_id == old.boot_id \
                    and old.last_seq is not None and message.seq >= old.last_seq:
                new = _next_telemetry(old, message, received_at, integrity)  # the common case
            else:
                if _is_older(old, message, retained):
                    changes = {"last_seen_at": received_at, "stale": old.stale + 1}
                else:
                    changes = _fold(old, message, received_at, retained)
                if integrity is not None:
                    changes["integrity"] = integrity
                new = _replace(old, changes)
            if len(new.slots) != len(old.slots) or isinstance(message, BirthMessage):
                new = _with_tags(new, self._tags(*key))  # new slots: their iPads, by the inventory
            self._cabinets[key] = new
            if self._observer is not None:
                self._observer(known, new, received_at)
            self._version += 1
            self._changed.pop(key, None)
            self._changed[key] = self._version
            return new

    @property
    def version(self) -> int:
        """Grows by one with every change of any cabinet."""
        with self._lock:
            return self._version

    def changed_since(self, version: int) -> tuple[int, list[CabinetView]]:
        """(the current version, the cabinets changed after ``version``), newest change first.
        Costs the number of changed cabinets, not the size of the fleet."""
        with self._lock:
            changed = []
            for key in reversed(self._changed):
                if self._changed[key] <= version:
                    break
                changed.append(self._cabinets[key])
            return self._version, changed

    def set_integrity(self, site: str, cabinet: str, integrity: CabinetIntegrity) -> None:
        """A known cabinet's delivery counters changed without a message being applied (one was
        refused at the boundary); an unknown cabinet stays unknown."""
        key = (site, cabinet)
        with self._lock:
            old = self._cabinets.get(key)
            if old is None:
                return
            self._cabinets[key] = _replace(old, {"integrity": integrity})
            self._version += 1
            self._changed.pop(key, None)
            self._changed[key] = self._version

    def retag(self, keys: Iterable[CabinetKey]) -> int:
        """The inventory changed for these cabinets: give their slots its asset tags (a cabinet
        that changes counts as changed, so the alert rules look at it again). Returns how many
        changed."""
        changed = 0
        with self._lock:
            for key in keys:
                old = self._cabinets.get(key)
                if old is None:
                    continue
                new = _with_tags(old, self._tags(*key))
                if new is old:
                    continue
                self._cabinets[key] = new
                if self._observer is not None:
                    self._observer(old, new, None)
                self._version += 1
                self._changed.pop(key, None)
                self._changed[key] = self._version
                changed += 1
        return changed

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


_FIELD_INDEX: Final = {name: index for index, name in enumerate(CabinetView._fields)}
_make: Final = tuple.__new__


def _replace(old: CabinetView, changes: Mapping[str, object]) -> CabinetView:
    """``old._replace(**changes)`` at a fraction of its cost (it runs once per message)."""
    values = list(old)
    for name, value in changes.items():
        values[_FIELD_INDEX[name]] = value
    return _make(CabinetView, values)


_I = _FIELD_INDEX
_LAST_SEEN, _LAST_TS, _LAST_SEQ, _SLOTS, _DOOR, _MAINS, _TEMPERATURE, _DEVICES, _SLOTS_SEQ, \
    _INTEGRITY = (_I["last_seen_at"], _I["last_message_ts"], _I["last_seq"], _I["slots"],
                  _I["door"], _I["mains"], _I["temperature_c"], _I["devices"], _I["slots_seq"],
                  _I["integrity"])


def _next_telemetry(old: CabinetView, message: TelemetryMessage, received_at: datetime,
                    integrity: CabinetIntegrity | None) -> CabinetView:
    """``_fold`` and ``_replace`` in one for the bulk of ingest: the next telemetry of the boot
    the record holds (nothing older, no new boot). Tested equal to the general way."""
    values = list(old)
    values[_LAST_SEEN] = received_at
    values[_LAST_TS] = message.ts
    values[_LAST_SEQ] = values[_SLOTS_SEQ] = message.seq
    values[_SLOTS] = _telemetry_slots(old.slots, message)
    values[_DOOR] = message.door
    values[_MAINS] = message.mains
    values[_TEMPERATURE] = message.temperature_c
    values[_DEVICES] = _same_devices(old.devices, message.devices)
    if integrity is not None:
        values[_INTEGRITY] = integrity
    return _make(CabinetView, values)


def _with_tags(view: CabinetView, tags: Mapping[int, str]) -> CabinetView:
    """The record with these asset tags on its slots (itself when they are there already)."""
    if all(slot.asset_tag == tags.get(slot.slot) for slot in view.slots):
        return view
    return _replace(view, {"slots": tuple(slot._replace(asset_tag=tags.get(slot.slot))
                                          for slot in view.slots)})


def _is_older(old: CabinetView, message: Message, retained: bool = False) -> bool:
    """Older than the record: an earlier seq of this boot, a message of a boot that was replaced,
    or a replay (or retained message) from an unknown boot with an older timestamp (the collector
    started meanwhile).

    A retained message is the newest of *its channel*: after a collector restart the broker hands
    over a stopped agent's status (its last seq), birth and state (earlier seqs) in its own order,
    so an earlier seq of this boot is older only than a newer message of the same kind — for a
    state, newer slot states (state or telemetry)."""
    if old.boot_id is None:
        return False
    if isinstance(message, StatusMessage) and message.status is AgentStatus.OFFLINE:
        return False  # the Last Will's seq is from connect time; _is_stale_will judges it
    if message.boot_id == old.boot_id:
        if old.last_seq is None or message.seq >= old.last_seq:
            return False
        if not retained:
            return True
        return isinstance(message, StateMessage) and old.slots_seq is not None \
            and message.seq < old.slots_seq
    if any(change.previous_boot_id == message.boot_id for change in old.boot_changes):
        return True
    return (message.replayed or retained) and message.ts < old.last_message_ts


def _fold(old: CabinetView, message: Message, received_at: datetime,
          retained: bool = False) -> dict[str, object]:
    changes: dict[str, object] = {"last_seen_at": received_at, "last_message_ts": message.ts,
                                  "last_seq": message.seq}
    if message.boot_id == old.boot_id and old.last_seq is not None and message.seq < old.last_seq:
        # A retained message of this boot, folded in after newer ones: it moves nothing back.
        changes["last_seq"], changes["last_message_ts"] = old.last_seq, old.last_message_ts
    if old.boot_id is None:
        changes["boot_id"] = message.boot_id
    elif message.boot_id != old.boot_id and not _is_stale_will(old, message):
        changes["boot_id"] = message.boot_id
        offline = old.status in (FleetStatus.OFFLINE, FleetStatus.STOPPED)
        change = BootChange(old.boot_id, message.boot_id, received_at, offline,
                            old.status_since if offline else None)
        changes["boot_changes"] = (*old.boot_changes, change)[-MAX_BOOT_CHANGES:]
        changes["slots_seq"] = None  # the old boot's numbers say nothing about the new one's
        changes["online_seqs"], changes["online_retained"] = (), False
    if isinstance(message, StatusMessage):
        changes.update(_status(old, message, received_at, retained))
    elif isinstance(message, BirthMessage):
        changes.update(_birth(old, message))
    elif isinstance(message, StateMessage):
        changes.update(_state(old, message))
    elif isinstance(message, TelemetryMessage):
        changes.update(_telemetry(old, message))
    elif isinstance(message, EventMessage):
        pass  # the state message that follows every change carries the result
    return changes


def _is_stale_will(old: CabinetView, message: Message, retained: bool = False) -> bool:
    """A Last Will of a connection the agent has replaced: of an earlier boot, arriving after the
    new boot said it is online; or of this boot, registered before the connection whose "online"
    came before the newest one. An agent registers a new Will before each connection, after
    everything it numbered in the connection before, and says "online" first thing once
    connected: Will(k-1) < online(k-1) < Will(k) < online(k). So when the agent moved to another
    broker (or took its session over on the same one) and the old broker sends the old
    connection's Will late, it is older than online(k-1) and changes nothing; the Will of the
    connection now in use is newer than online(k-1) and says offline.

    A *retained* Will older than an "online" of its boot that was itself retained is stale too: a
    broker keeps one status per cabinet, so the broker that delivered that "online" from its
    store (after a collector restart) still had the agent connected, and the Will comes from
    another broker, which kept it since the agent left it. (Against an "online" heard live the
    retained Will may be the current connection's, sent while the collector was away.)"""
    if not isinstance(message, StatusMessage) or message.status is not AgentStatus.OFFLINE:
        return False
    if message.boot_id != old.boot_id:
        return old.status is FleetStatus.ONLINE
    if retained and old.online_retained and message.seq < old.online_seqs[-1]:
        return True
    return len(old.online_seqs) == 2 and message.seq < old.online_seqs[0]


def _status(old: CabinetView, message: StatusMessage, received_at: datetime,
            retained: bool = False) -> dict[str, object]:
    if _is_stale_will(old, message, retained):
        return {}
    status = FleetStatus(message.status.value)
    changes: dict[str, object] = {"status": status, "status_reason": message.reason}
    if message.status is AgentStatus.ONLINE:
        kept = old.online_seqs if message.boot_id == old.boot_id else ()
        changes["online_seqs"] = seqs = tuple(sorted({*kept, message.seq}))[-2:]
        changes["online_retained"] = retained if seqs[-1] == message.seq \
            else bool(kept) and old.online_retained
    if status is not old.status:
        changes["status_since"] = received_at
    return changes


def _birth(old: CabinetView, message: BirthMessage) -> dict[str, object]:
    # The birth's own asset tags (older agents send them) are not read: Fleet.apply sets the
    # inventory's.
    current = {s.slot: s for s in old.slots}
    make = tuple.__new__  # SlotView without its Python-level __new__ (32 per birth)
    slots = tuple(
        s if (s := current.get(n))
        else make(SlotView, (n, None, SlotState.UNKNOWN, None, None, None, None, None, None))
        for n in range(1, message.slot_count + 1)
    )
    return {
        "agent_version": message.agent_version,
        "model": message.cabinet_model,
        "config_hash": message.config_hash,
        "slot_count": message.slot_count,
        "telemetry_interval_s": message.telemetry_interval_s,
        "poll_interval_s": message.poll_interval_s,
        "sensing": message.sensing,
        "slots": slots,
    }


def _devices(devices: list[DeviceHealth]) -> tuple[DeviceView, ...]:
    return tuple(DeviceView(d.name, d.ok, d.error) for d in devices)


def _state(old: CabinetView, message: StateMessage) -> dict[str, object]:
    current = {s.slot: s for s in old.slots}
    for snap in message.slots:
        base = current.get(snap.slot)
        tag = base.asset_tag if base is not None else None
        current[snap.slot] = SlotView(snap.slot, tag, snap.state, snap.power_w, snap.since,
                                      snap.certainty, snap.last_draw_at, snap.unseen_since,
                                      snap.fault if snap.state is SlotState.FAULT else None)
    return {
        "slots": tuple(current[n] for n in sorted(current)),
        "door": message.door,
        "mains": message.mains,
        "temperature_c": message.temperature_c,
        "devices": _same_devices(old.devices, message.devices),
        "slots_seq": message.seq,
    }


def _telemetry(old: CabinetView, message: TelemetryMessage) -> dict[str, object]:
    return {
        "slots": _telemetry_slots(old.slots, message),
        "door": message.door,
        "mains": message.mains,
        "temperature_c": message.temperature_c,
        "devices": _same_devices(old.devices, message.devices),
        "slots_seq": message.seq,
    }


def _telemetry_slots(slots: tuple[SlotView, ...], message: TelemetryMessage) -> tuple[SlotView, ...]:
    """The slots with this telemetry's states, certainties and readings; a slot keeps ``since``
    while its state stays, and its evidence (last draw, unseen since: carried by state messages)
    while its state and certainty stay. The hot path of ingest (one call per telemetry message)."""
    powers, states, ts = message.power_w, message.states, message.ts
    certainties = message.certainty
    if slots and slots[-1].slot != len(slots):  # numbered with gaps (a state message): general way
        current = {s.slot: s for s in slots}
        for index, state in enumerate(states):
            base = current.get(index + 1)
            current[index + 1] = _slot(index + 1, base, state,
                                       powers[index] if index < len(powers) else None, ts,
                                       _certainty(certainties, index, base, state))
        return tuple(current[n] for n in sorted(current))
    # Slots are 1..n (birth and telemetry build them so): position i is slot i + 1. Inlined _slot,
    # one comprehension, the fields by index (b[2] is SlotView.state): per slot this is the hottest
    # code of ingest. tuple.__new__ builds the NamedTuple without its Python-level __new__.
    known, n, make = len(slots), len(states), tuple.__new__
    new = [make(SlotView, (number, b[1], state, power,
                           b[4] if (same := b[2] is state) and b[4] is not None else ts,
                           certainty := (sure if sure is not None or not same else b[5]),
                           b[6],
                           b[7] if same and certainty is b[5] else None,
                           b[8] if same else None))
           for number, b, state, power, sure in zip(
               count(1), slots, states, chain(powers, repeat(None)),
               chain(certainties, repeat(None)) if certainties is not None else repeat(None))]
    if known < n:  # slots the cabinet has not reported before
        readings, sure_count = len(powers), len(certainties) if certainties is not None else 0
        new += [make(SlotView, (index + 1, None, states[index],
                                powers[index] if index < readings else None, ts,
                                certainties[index] if index < sure_count else None,  # type: ignore[index]
                                None, None, None))
                for index in range(known, n)]
    elif known > n:
        new += slots[n:]
    return tuple(new)


def _certainty(certainties: list[Certainty] | None, index: int, base: SlotView | None,
               state: SlotState) -> Certainty | None:
    if certainties is not None and index < len(certainties):
        return certainties[index]
    return base.certainty if base is not None and base.state is state else None


def _slot(number: int, base: SlotView | None, state: SlotState, power: float | None,
          ts: datetime, certainty: Certainty | None = None) -> SlotView:
    if base is None:
        return SlotView(number, None, state, power, ts, certainty)
    same = base.state is state
    since = base.since if same and base.since is not None else ts
    unseen = base.unseen_since if same and certainty is base.certainty else None
    return SlotView(number, base.asset_tag, state, power, since, certainty, base.last_draw_at, unseen,
                    base.fault if same else None)


def _same_devices(old: tuple[DeviceView, ...], devices: list[DeviceHealth]) -> tuple[DeviceView, ...]:
    """The old tuple when nothing changed (the common case: no new objects per message)."""
    if len(old) == len(devices) and all(o.name == d.name and o.ok == d.ok and o.error == d.error
                                        for o, d in zip(old, devices, strict=True)):
        return old
    return _devices(devices)
