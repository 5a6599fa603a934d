"""Inline SVG, rendered on the server: a slot's state band with its power curve, and its charge
sessions as bars. No JavaScript and no chart library; the colours are the slot LEDs' (style.css).
Times are local and texts in the page's language: the page hands in its ``LocalTimes`` and its
translator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Final

from cabinet_agent.common.protocol import ChargeSession

from ..formatting import local, number
from .history import Sample, Transition
from .localtime import LocalTimes
from .texts import Translate

__all__ = ["battery_svg", "sessions_svg", "timeline_svg"]

WIDTH: Final = 800
BAND_H: Final = 18
PLOT_H: Final = 120
MAX_W: Final = 25.0  # an iPad charger's top: ≈20 W; more is an overpower alert anyway


def _x(at: datetime, start: datetime, span: timedelta) -> float:
    return round(max(0.0, min(1.0, (at - start) / span)) * WIDTH, 1)


def timeline_svg(transitions: Sequence[Transition], samples: Sequence[Sample], start: datetime,
                 end: datetime, label: str, times: LocalTimes, t: Translate) -> str:
    span = end - start
    parts = [f'<svg class="timeline" viewBox="0 0 {WIDTH} {BAND_H + PLOT_H + 20}" role="img" '
             f'aria-label="{escape(label)}">']
    for i, change in enumerate(transitions):
        until = transitions[i + 1].at if i + 1 < len(transitions) else end
        if until <= start:
            continue
        x0, x1 = _x(change.at, start, span), _x(until, start, span)
        parts.append(f'<rect class="st-{change.state.value}" x="{x0}" y="0" '
                     f'width="{max(x1 - x0, 1):.1f}" height="{BAND_H}">'
                     f'<title>{escape(t("st." + change.state.value))} '
                     f'{local(change.at, times.zone):%H:%M:%S}</title></rect>')
    points = " ".join(
        f"{_x(s.at, start, span)},{BAND_H + PLOT_H - min(s.power_w, MAX_W) / MAX_W * PLOT_H:.1f}"
        for s in samples if s.power_w is not None and s.at >= start)
    if points:
        parts.append(f'<polyline class="power" points="{points}"/>')
    for watts in (0, 10, 20):
        y = BAND_H + PLOT_H - watts / MAX_W * PLOT_H
        parts.append(f'<line class="grid" x1="0" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text x="2" y="{y - 2:.1f}">{watts} W</text>')
    step = max(span / 6, timedelta(minutes=1))
    tick = start
    while tick <= end:
        parts.append(f'<text x="{_x(tick, start, span)}" y="{BAND_H + PLOT_H + 16}">'
                     f'{local(tick, times.zone):%H:%M}</text>')
        tick += step
    parts.append("</svg>")
    return "".join(parts)


def sessions_svg(sessions: Sequence[ChargeSession], label: str, times: LocalTimes,
                 t: Translate) -> str:
    """Energy per session, oldest left; the tooltip has start, duration and how it ended."""
    if not sessions:
        return ""
    ordered = sorted(sessions, key=lambda s: s.started_at)
    top = max(max(s.energy_wh for s in ordered), 1.0)
    bar = WIDTH / max(len(ordered), 1)
    parts = [f'<svg class="sessions" viewBox="0 0 {WIDTH} 120" role="img" '
             f'aria-label="{escape(label)}">']
    for i, s in enumerate(ordered):
        h = s.energy_wh / top * 100
        parts.append(
            f'<rect class="end-{s.end.value}" x="{i * bar + 1:.1f}" y="{110 - h:.1f}" '
            f'width="{max(bar - 2, 1):.1f}" height="{h:.1f}"><title>{times.short(s.started_at)} '
            f'{number(s.duration_s / 60, times.lang, 0)} min {number(s.energy_wh, times.lang)} Wh '
            f'({escape(t("end." + s.end.value))})</title></rect>')
    parts.append(f'<text x="2" y="118">max {number(top, times.lang)} Wh</text></svg>')
    return "".join(parts)


def battery_svg(sessions: Sequence[ChargeSession], baseline_wh: float | None, worn_below: float,
                label: str, times: LocalTimes, t: Translate) -> str:
    """The battery's trend: the taper energy of each full charge (what its capacity shows in)
    over time, with the early baseline and the line below which it counts as worn."""
    full = sorted((s for s in sessions if s.taper_wh), key=lambda s: s.ended_at)
    if len(full) < 2:
        return ""
    start, end = full[0].ended_at, full[-1].ended_at
    span = max(end - start, timedelta(hours=1))
    top = max(max(s.taper_wh or 0.0 for s in full), baseline_wh or 0.0) * 1.15

    def y(wh: float) -> float:
        return round(110 - wh / top * 100, 1)

    parts = [f'<svg class="battery" viewBox="0 0 {WIDTH} 130" role="img" aria-label="{escape(label)}">']
    if baseline_wh:
        for wh, css, key in ((baseline_wh, "baseline", "bat.baseline"),
                             (baseline_wh * worn_below, "worn-line", "bat.worn_line")):
            parts.append(f'<line class="{css}" x1="0" x2="{WIDTH}" y1="{y(wh)}" y2="{y(wh)}"/>'
                         f'<text x="{WIDTH - 4}" y="{y(wh) - 3}" text-anchor="end">'
                         f'{escape(t(key))} {number(wh, times.lang)} Wh</text>')
    points = " ".join(f"{_x(s.ended_at, start, span)},{y(s.taper_wh or 0.0)}" for s in full)
    parts.append(f'<polyline class="taper" points="{points}"/>')
    for s in full:
        parts.append(f'<circle class="taper" cx="{_x(s.ended_at, start, span)}" '
                     f'cy="{y(s.taper_wh or 0.0)}" r="3"><title>{times.short(s.ended_at)} '
                     f'{number(s.taper_wh or 0.0, times.lang)} Wh</title></circle>')
    parts.append(f'<text x="2" y="126">{escape(times.short(start))}</text>'
                 f'<text x="{WIDTH - 2}" y="126" text-anchor="end">{escape(times.short(end))}'
                 "</text></svg>")
    return "".join(parts)
