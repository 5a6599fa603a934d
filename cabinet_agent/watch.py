"""``cabinet-agent watch``: a live terminal table of raw readings and slot states, for installers.

Plain ANSI (cursor home, clear) and the standard library; no MQTT, nothing published. ``render``
is pure, so it is tested without a terminal.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TextIO, runtime_checkable

from .cabinet_model import LoadedCabinet
from .classify import CabinetClassifier
from .clock import utcnow
from .poller import CabinetReading, Poller
from .registers import Value
from .schedule import ticks
from .sources.base import DeviceSource
from .windows import ChargingWindows

__all__ = ["HasCounters", "render", "watch"]

CLEAR = "\x1b[H\x1b[J"  # cursor to the top left, clear to the end of the screen
SLOT_COLUMNS = 4


@runtime_checkable
class HasCounters(Protocol):
    """An optional capability of a source: counters worth showing (lines accepted, rejected)."""

    def counters(self) -> dict[str, int]: ...


def _value(value: Value) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool):
        return "1" if value else "0"
    return f"{value:g}"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def render(cabinet: LoadedCabinet, reading: CabinetReading, states: Sequence[str],
           sources: Sequence[DeviceSource], title: str, now: datetime, width: int = 100) -> str:
    """The whole screen as text; unknown values show as ``?``."""
    temperature = "?" if reading.temperature_c is None else f"{reading.temperature_c:.1f} °C"
    lines = [
        _fit(f"{title}  model {cabinet.model.name} ({cabinet.model.slots} slots)  "
             f"{now:%Y-%m-%d %H:%M:%S}  poll {reading.duration_s * 1000:.1f} ms", width),
        f"door {reading.door.value}   mains {reading.mains.value}   temperature {temperature}",
        "",
        f"{'device':<12} {'status':<6} readings",
    ]
    by_name = {s.name: s for s in sources}
    for health in reading.devices:
        if health.ok:
            values = reading.raw.get(health.name, {})
            text = "  ".join(
                f"{point}=" + (" ".join(_value(v) for v in value) if isinstance(value, list)
                               else _value(value))
                for point, value in sorted(values.items()))
            status = "ok"
        else:
            text, status = health.error or "", "FAULT"
        source = by_name.get(health.name)
        if isinstance(source, HasCounters):  # first: a long reading would push them off screen
            text = "[" + " ".join(f"{k}={v}" for k, v in source.counters().items()) + "]  " + text
        lines.append(_fit(f"{health.name:<12} {status:<6} {text}", width))
    lines += ["", "  ".join(["slot       W state     "] * SLOT_COLUMNS).rstrip()]
    cells = [f"{slot:>4} {_value(None if power is None else round(power, 1)):>7} {state:<10}"
             for slot, (power, state) in enumerate(zip(reading.slot_power, states, strict=True),
                                                  start=1)]
    for row in range(0, len(cells), SLOT_COLUMNS):
        lines.append("  ".join(cells[row:row + SLOT_COLUMNS]).rstrip())
    return "\n".join(lines) + "\n"


async def watch(cabinet: LoadedCabinet, poller: Poller, title: str, *, interval_s: float,
                cycles: int | None, out: TextIO = sys.stdout, clear: bool = True,
                windows: ChargingWindows | None = None, time_scale: float = 1.0) -> None:
    """Poll and redraw every ``interval_s``; ``cycles`` polls and then return (None: forever).

    With ``cycles`` set, only the last screen is printed (``--once``).
    """
    # Classified as the running agent does (service.Agent): the model's [thresholds], the
    # configured charging windows and [simulation] speed, or the screen shows states the agent
    # would never publish.
    classifier = CabinetClassifier(cabinet.model.slots, cabinet.model.effective_thresholds(),
                                   windows=windows or ChargingWindows(), counters=cabinet.counters,
                                   time_scale=time_scale)
    done = 0
    try:
        async for _ in ticks(interval_s):
            reading = await poller.poll()
            now = utcnow()
            classifier.update(reading, now)
            done += 1
            last = cycles is not None and done >= cycles
            if cycles is None or last:
                width = shutil.get_terminal_size((100, 24)).columns
                screen = render(cabinet, reading, [s.value for s in classifier.states()],
                                poller.sources.devices, title, now, width)
                out.write((CLEAR if clear else "") + screen)
                out.flush()
            if last:
                return
    finally:
        await poller.close()
