"""mains_lost: the cabinet has no mains power during its charging window (iPads will not be full)."""

from __future__ import annotations

from datetime import time

from pydantic import Field

from cabinet_agent.common.protocol import MainsState
from server.org import TimeWindow

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, cabinet_labels

__all__ = ["MainsLost", "MainsLostSettings"]


class MainsLostSettings(RuleSettings):
    pending_s: float = Field(default=300.0, ge=0, description="mains off this long")
    window: TimeWindow = Field(
        default=TimeWindow(start=time(15, 0), end=time(7, 0)),
        description="default charging window, local time; a school's charging_window wins (GUESS)",
    )
    severity: Severity = Field(default=Severity.CRITICAL, description="info, warning or critical")


class MainsLost(SettingsRule):
    name = "mains_lost"

    def __init__(self, settings: MainsLostSettings) -> None:
        super().__init__(settings)
        self._window = settings.window

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet in ctx.cabinets:
            if cabinet.mains is not MainsState.OFF:
                continue
            school = ctx.school(cabinet.site)
            window = school.charging_window if school and school.charging_window else self._window
            local = ctx.calendars.for_site(cabinet.site).local(ctx.now)
            if window.contains(local.time()):
                findings.append(Finding(cabinet_labels(self.name, cabinet), {}))
        return findings
