"""over_temperature (40 °C warning, 50 °C critical: GUESSES, hardware.md §4) and temperature_rise
(a fast rise is a fire's or a failing charger's first sign, long before a threshold)."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Self

from pydantic import Field, model_validator

from server.fleet import CabinetKey

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, cabinet_labels

__all__ = ["OverTemperature", "OverTemperatureSettings", "TemperatureRise",
           "TemperatureRiseSettings"]


class OverTemperatureSettings(RuleSettings):
    pending_s: float = Field(default=120.0, ge=0, description="above a threshold this long")
    warn_c: float = Field(default=40.0, description="warning from this cabinet temperature (GUESS)")
    critical_c: float = Field(default=50.0, description="critical from this temperature (GUESS)")

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.critical_c <= self.warn_c:
            raise ValueError("critical_c must be above warn_c")
        return self


class OverTemperature:
    """One alert per level: ``severity`` is a label, so a critical alert is a separate alert that
    inhibits the warning of the same cabinet (see inhibit.py)."""

    name = "over_temperature"

    def __init__(self, settings: OverTemperatureSettings) -> None:
        self.pending = timedelta(seconds=settings.pending_s)
        self.severity = Severity.WARNING
        self._levels = ((Severity.CRITICAL, settings.critical_c), (Severity.WARNING, settings.warn_c))

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet in ctx.cabinets:
            t = cabinet.temperature_c
            if t is None:
                continue
            for severity, threshold in self._levels:
                if t >= threshold:
                    labels = {**cabinet_labels(self.name, cabinet), "severity": severity.value}
                    findings.append(Finding(labels, {"temperature_c": f"{t:.1f}",
                                                     "threshold_c": f"{threshold:.1f}"}))
        return findings


class TemperatureRiseSettings(RuleSettings):
    rise_c: float = Field(default=5.0, gt=0, description="a rise of this much … (GUESS)")
    window_s: float = Field(default=600.0, gt=0, description="… within this many seconds fires")
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class TemperatureRise(SettingsRule):
    """Keeps the readings it has seen over the window (the fleet holds only the latest), so it is a
    function of the fleet states over that window. After a restart it needs a window to judge.

    The engine evaluates a cabinet at least at every tick in which it sent something, so every
    reading that reaches the fleet state is seen; between those ticks a cabinet may not be
    evaluated at all, so its history is kept (and trimmed only when it is evaluated again)."""

    name = "temperature_rise"

    def __init__(self, settings: TemperatureRiseSettings) -> None:
        super().__init__(settings)
        self._rise = settings.rise_c
        self._window = timedelta(seconds=settings.window_s)
        self._seen: dict[CabinetKey, deque[tuple[datetime, float]]] = {}

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        oldest = ctx.now - self._window
        for cabinet in ctx.cabinets:
            history = self._seen.get(cabinet.key)
            t = cabinet.temperature_c
            if t is not None and (not history or history[-1][0] < cabinet.last_message_ts):
                if history is None:
                    history = self._seen[cabinet.key] = deque()
                history.append((cabinet.last_message_ts, t))
            if history is None:
                continue
            while history and history[0][0] < oldest:
                history.popleft()
            if not history:
                del self._seen[cabinet.key]  # nothing in the window: no memory per silent cabinet
                continue
            if t is None:
                continue
            lowest = min(value for _, value in history)
            if t - lowest >= self._rise:
                findings.append(Finding(cabinet_labels(self.name, cabinet),
                                        {"from_c": f"{lowest:.1f}", "to_c": f"{t:.1f}",
                                         "window_min": f"{self._window.total_seconds() / 60:.0f}"}))
        return findings
