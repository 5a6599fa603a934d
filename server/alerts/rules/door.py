"""door_open (open longer than N minutes: the pending period is the N) and door_open_after_hours
(open outside the school's hours, or on a day without school)."""

from __future__ import annotations

from pydantic import Field

from cabinet_agent.common.protocol import DoorState

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, cabinet_labels

__all__ = ["DoorOpen", "DoorOpenAfterHours", "DoorOpenAfterHoursSettings", "DoorOpenSettings"]


class DoorOpenSettings(RuleSettings):
    pending_s: float = Field(
        default=900.0, ge=0, description="the door may stand open this long (taking iPads out)"
    )
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class DoorOpen(SettingsRule):
    name = "door_open"

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        return [Finding(cabinet_labels(self.name, c), {})
                for c in ctx.cabinets if c.door is DoorState.OPEN]


class DoorOpenAfterHoursSettings(RuleSettings):
    pending_s: float = Field(default=120.0, ge=0, description="open outside hours this long")
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class DoorOpenAfterHours(SettingsRule):
    """Only for cabinets of a configured school (its hours are needed)."""

    name = "door_open_after_hours"

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet in ctx.cabinets:
            if cabinet.door is not DoorState.OPEN:
                continue
            school = ctx.school(cabinet.site)
            if school is None:
                continue
            calendar = ctx.calendars.for_site(cabinet.site)
            local = calendar.local(ctx.now)
            day_off = calendar.no_school_reason(local.date())
            if day_off is None and school.hours.contains(local.time()):
                continue
            annotations = {"day_off": day_off} if day_off else {}
            findings.append(Finding(cabinet_labels(self.name, cabinet), annotations))
        return findings
