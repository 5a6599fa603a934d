"""Protocol messages as InfluxDB line protocol, built as plain strings (no Point objects: they cost
4.5× the CPU, see ceilings.md).

Schema:
  slot,site=…,cabinet=…,slot=…[,asset_tag=…] [power_w=<float>,]state=<int>i <ns>
  cabinet,site=…,cabinet=… [temperature_c=…,][door_open=0|1i,][mains_on=0|1i,][poll_ms=…,]
      devices_faulty=<int>i <ns>
  point,site=…,cabinet=…,device=…,point=…[,channel=…][,unit=…] value=<float> <ns>
Slot lines come from every ``telemetry`` and every ``state`` message (state is sent immediately on
each change); cabinet lines from the same two. Unknown values are omitted, never written as 0.
Point lines (protocol revision 4: a model's extra readings, raw, e.g. a meter's energy counter)
come only from telemetry that carries points. Session lines (one per finished charge):
  session,site=…,cabinet=…,slot=…,end=…[,asset_tag=…][,energy_method=…] energy_wh=…,duration_s=…,
      peak_w=…[,taper_wh=…] <ns of its end>
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import chain, count, repeat
from operator import attrgetter
from typing import Final, Protocol

from cabinet_agent.common.protocol import (
    DeviceHealth,
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    Message,
    PointReading,
    SlotState,
    StateMessage,
    TelemetryMessage,
)

__all__ = [
    "SLOT_STATE_CODES",
    "Tagged",
    "TypedPoint",
    "escape_tag",
    "event_lines",
    "message_lines",
    "point_lines",
    "session_lines",
    "state_lines",
    "telemetry_lines",
    "timestamp_ns",
    "typed_lines",
]

SLOT_STATE_CODES: Final[Mapping[SlotState, int]] = {
    SlotState.EMPTY: 0,
    SlotState.CHARGING: 1,
    SlotState.CHARGED: 2,
    SlotState.PRESENT_IDLE: 3,
    SlotState.FAULT: 4,
    SlotState.UNKNOWN: 5,
}

# Line protocol cannot carry control characters in a tag; backslash is escaped so that a value
# ending in one cannot swallow the separator that follows (InfluxDB 2 and VictoriaMetrics both read
# "\\" as one backslash).
_TAG_ESCAPES: Final = str.maketrans({
    "\\": "\\\\",
    ",": "\\,",
    "=": "\\=",
    " ": "\\ ",
    "\n": "\\ ",
    "\r": "\\ ",
    "\t": "\\ ",
})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def escape_tag(value: str) -> str:
    """Escape a tag key or value."""
    return value.translate(_TAG_ESCAPES)


def timestamp_ns(ts: datetime) -> int:
    """Exact nanoseconds since the epoch (float arithmetic would lose the last digits)."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _float(value: float) -> str | None:
    return repr(float(value)) if math.isfinite(value) else None


def _slot_lines(tags: str, slots: Iterable[tuple[int, SlotState, float | None]],
                asset_tags: Mapping[int, str], ts: str) -> list[str]:
    """One line per (slot, state, power). The collector's hottest loop (every slot of every
    telemetry and state message): inlined, no call per slot beyond the formatting itself."""
    prefix = f"slot,{tags},slot="
    codes, isfinite, escapes = SLOT_STATE_CODES, math.isfinite, _TAG_ESCAPES
    lines = []
    for number, state, power in slots:
        tag = asset_tags.get(number)
        head = f"{prefix}{number},asset_tag={tag.translate(escapes)}" if tag \
            else f"{prefix}{number}"
        if power is not None and isfinite(power):
            lines.append(f"{head} power_w={float(power)!r},state={codes[state]}i {ts}")
        else:
            lines.append(f"{head} state={codes[state]}i {ts}")
    return lines


def _cabinet_line(prefix: str, temperature_c: float | None, door: DoorState, mains: MainsState,
                  poll_ms: float | None, devices: Sequence[DeviceHealth], ts: str) -> str:
    fields = []
    if temperature_c is not None and (value := _float(temperature_c)) is not None:
        fields.append(f"temperature_c={value}")
    if door is not DoorState.UNKNOWN:
        fields.append(f"door_open={int(door is DoorState.OPEN)}i")
    if mains is not MainsState.UNKNOWN:
        fields.append(f"mains_on={int(mains is MainsState.ON)}i")
    if poll_ms is not None and (value := _float(poll_ms)) is not None:
        fields.append(f"poll_ms={value}")
    fields.append(f"devices_faulty={sum(1 for d in devices if not d.ok)}i")
    return f"cabinet,{prefix} {','.join(fields)} {ts}"


def _when(message: Message, received_at: datetime) -> str:
    # An agent whose clock is not synchronised may say 1970; the receive time is the better guess.
    return str(timestamp_ns(message.ts if message.clock_synced else received_at))


def _tags(message: Message) -> str:
    return f"site={escape_tag(message.site)},cabinet={escape_tag(message.cabinet)}"


def point_lines(tags: str, points: Iterable[PointReading], ts: str) -> list[str]:
    """One line per extra reading; the decoder let only finite numbers through, checked again
    because a non-finite value would make the whole batch unreadable to the database."""
    lines = []
    for p in points:
        value = _float(p.value)
        if value is None:
            continue
        head = f"point,{tags},device={escape_tag(p.device)},point={escape_tag(p.point)}"
        if p.channel is not None:
            head += f",channel={p.channel}"
        if p.unit:
            head += f",unit={escape_tag(p.unit)}"
        lines.append(f"{head} value={value} {ts}")
    return lines


def telemetry_lines(message: TelemetryMessage, asset_tags: Mapping[int, str],
                    received_at: datetime) -> list[str]:
    ts = _when(message, received_at)
    tags = _tags(message)
    # power_w may be shorter than states (a reading missing): None for the rest.
    slots = zip(count(1), message.states, chain(message.power_w, repeat(None)))
    lines = _slot_lines(tags, slots, asset_tags, ts)
    lines.append(_cabinet_line(tags, message.temperature_c, message.door, message.mains,
                               message.poll_ms, message.devices, ts))
    if message.points:  # most cabinets name no points: one check on the hot path
        lines += point_lines(tags, message.points, ts)
    return lines


def state_lines(message: StateMessage, asset_tags: Mapping[int, str],
                received_at: datetime) -> list[str]:
    ts = _when(message, received_at)
    tags = _tags(message)
    lines = _slot_lines(tags, ((s.slot, s.state, s.power_w) for s in message.slots), asset_tags, ts)
    lines.append(_cabinet_line(tags, message.temperature_c, message.door, message.mains,
                               None, message.devices, ts))
    return lines


def session_lines(message: EventMessage, received_at: datetime) -> list[str]:
    """One point per finished charge session, at its end; the end reason is a tag."""
    session = message.session
    if session is None:
        return []
    tags = f"session,{_tags(message)},slot={session.slot},end={escape_tag(session.end.value)}"
    if session.asset_tag:
        tags += f",asset_tag={escape_tag(session.asset_tag)}"
    if session.energy_method is not None:  # revision 5: counter, mixed or integrated
        tags += f",energy_method={session.energy_method.value}"
    fields = [f"energy_wh={_float(session.energy_wh)}", f"duration_s={_float(session.duration_s)}",
              f"peak_w={_float(session.peak_w)}"]
    if session.taper_wh is not None:
        fields.append(f"taper_wh={_float(session.taper_wh)}")
    ended = session.ended_at if message.clock_synced else received_at
    return [f"{tags} {','.join(f for f in fields if not f.endswith('=None'))} {timestamp_ns(ended)}"]


def event_lines(message: EventMessage, received_at: datetime) -> list[str]:
    """One point per event (``event_seq`` in VictoriaMetrics), keyed by its tags and its time, so a
    replayed event overwrites itself (InfluxDB; VictoriaMetrics with -dedup.minScrapeInterval)."""
    tags = f"event,{_tags(message)},event={escape_tag(message.event.value)}"
    if message.slot is not None:
        tags += f",slot={message.slot}"
    if message.device is not None:
        tags += f",device={escape_tag(message.device)}"
    return [f"{tags} seq={message.seq}i {_when(message, received_at)}"]


def message_lines(message: Message, asset_tags: Mapping[int, str],
                  received_at: datetime) -> list[str]:
    """The lines one message contributes; status, birth and event messages contribute none."""
    if isinstance(message, TelemetryMessage):
        return telemetry_lines(message, asset_tags, received_at)
    if isinstance(message, StateMessage):
        return state_lines(message, asset_tags, received_at)
    if isinstance(message, EventMessage) and message.event is EventKind.SESSION_ENDED:
        return session_lines(message, received_at)
    return []


class Tagged(Protocol):
    """A slot as the fleet knows it: its number and the inventory's asset tag (``SlotView``)."""

    @property
    def slot(self) -> int: ...

    @property
    def asset_tag(self) -> str | None: ...


_asset_tag: Final = attrgetter("asset_tag")
TypedPoint = tuple[Message, Sequence[Tagged], datetime]
"""A message whose lines are still to be built: (the message, its cabinet's slots with their asset
tags, when it happened). The writer builds the lines of many at once (``typed_lines``)."""


def typed_lines(items: Iterable[TypedPoint]) -> list[str]:
    """The lines of many messages, the same as ``message_lines`` gives each (tested equal): built
    per batch in the TSDB writer, not per message in the MQTT thread. Telemetry and state, the
    bulk, take one loop per slot over C-level iterators; a telemetry's asset tags come by position
    from the cabinet's slots when they are numbered 1..n (``Fleet`` builds them so)."""
    out: list[str] = []
    append = out.append
    codes, isfinite, escapes = SLOT_STATE_CODES, math.isfinite, _TAG_ESCAPES
    prefixes: dict[tuple[str, str], str] = {}
    for message, slots, when in items:
        telemetry = isinstance(message, TelemetryMessage)
        if not telemetry and not isinstance(message, StateMessage):
            out += message_lines(message, {s.slot: s.asset_tag for s in slots if s.asset_tag}, when)
            continue
        ts = str(timestamp_ns(message.ts if message.clock_synced else when))
        key = (message.site, message.cabinet)
        tags = prefixes.get(key)
        if tags is None:
            tags = prefixes[key] = _tags(message)
        prefix = f"slot,{tags},slot="
        known = len(slots)
        # (number, state, power, asset tag) per slot, from C-level iterators only
        numbered: Iterable[tuple[int, SlotState, float | None, str | None]]
        if telemetry:
            tag_of = chain(map(_asset_tag, slots), repeat(None)) if not known or \
                slots[-1].slot == known else map({s.slot: s.asset_tag for s in slots}.get, count(1))
            numbered = zip(count(1), message.states,  # type: ignore[union-attr]
                           chain(message.power_w, repeat(None)), tag_of)  # type: ignore[union-attr]
        else:
            tag_by_number = {s.slot: s.asset_tag for s in slots}
            numbered = ((s.slot, s.state, s.power_w, tag_by_number.get(s.slot))
                        for s in message.slots)  # type: ignore[union-attr]
        for number, state, power, tag in numbered:  # one f-string per line: the hottest loop
            if tag:
                if power is not None and isfinite(power):
                    append(f"{prefix}{number},asset_tag={tag.translate(escapes)} "
                           f"power_w={float(power)!r},state={codes[state]}i {ts}")
                else:
                    append(f"{prefix}{number},asset_tag={tag.translate(escapes)} "
                           f"state={codes[state]}i {ts}")
            elif power is not None and isfinite(power):
                append(f"{prefix}{number} power_w={float(power)!r},state={codes[state]}i {ts}")
            else:
                append(f"{prefix}{number} state={codes[state]}i {ts}")
        append(_cabinet_line(tags, message.temperature_c, message.door, message.mains,
                             message.poll_ms if telemetry else None,  # type: ignore[union-attr]
                             message.devices, ts))
        if telemetry and message.points:  # type: ignore[union-attr]
            out += point_lines(tags, message.points, ts)  # type: ignore[union-attr]
    return out
