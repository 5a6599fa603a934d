"""ipad_not_charging (present but not drawing, or a slot fault) and ipad_not_charged (still
charging at the school's morning check on a school day: it will not be full for the lesson).

"Present but not drawing" counts only where the agent knows the iPad should draw (``present_idle``
with certainty ``certain``: put in while watched and silent, its charge stopped abruptly, or no
top-up for the whole evidence window). An iPad present and silent since the agent started may
simply be full (``cannot_tell``): no alert — so neither an agent restart nor a collector restart
that seeds the fleet from retained state raises one (docs/classification.md)."""

from __future__ import annotations

from pydantic import Field

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, slot_labels

__all__ = ["NotCharged", "NotChargedSettings", "NotCharging", "NotChargingSettings"]


class NotChargingSettings(RuleSettings):
    pending_s: float = Field(
        default=900.0, ge=0, description="present_idle or fault this long (top-up pauses are short)"
    )
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class NotCharging(SettingsRule):
    name = "ipad_not_charging"
    fresh_data_only = True  # nothing new from an away agent's last state (engine.py)

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet, groups in ctx.grouped():
            for index in groups.idle_or_fault:  # present_idle (certain) or fault
                slot = cabinet.slots[index]
                tag = ctx.expected_tags(cabinet)[index]
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {"state": slot.state.value}))
        return findings


class NotChargedSettings(RuleSettings):
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class NotCharged(SettingsRule):
    """Holds from the morning check while the slot is still charging since before it."""

    name = "ipad_not_charged"
    fresh_data_only = True  # nothing new from an away agent's last state (engine.py)

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet, groups in ctx.grouped():
            if not groups.charging:
                continue
            school = ctx.school(cabinet.site)
            if school is None:
                continue
            check = ctx.last_check(cabinet.site, school.morning_check)
            if check is None:
                continue
            for index in groups.charging:
                slot = cabinet.slots[index]
                if slot.since is not None and slot.since > check.utc:
                    continue  # put in after the check: it has until the next one
                tag = ctx.expected_tags(cabinet)[index]
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {"check": check.text}))
        return findings
