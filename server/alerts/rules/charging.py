"""charging_too_long (a slot charging for longer than any iPad needs) and slot_overpower (a slot
drawing more than its charger can deliver: a wrong or faulty charger)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from cabinet_agent.protocol import SlotState

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, expected_asset_tag, slot_labels

__all__ = ["ChargingTooLong", "ChargingTooLongSettings", "SlotOverpower", "SlotOverpowerSettings"]


class ChargingTooLongSettings(RuleSettings):
    max_hours: float = Field(
        default=8.0, gt=0,
        description="longest plausible charge (12.9\" iPad Pro on 12 W: 4.5–5 h, hardware.md; GUESS)",
    )
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class ChargingTooLong(SettingsRule):
    name = "charging_too_long"

    def __init__(self, settings: ChargingTooLongSettings) -> None:
        super().__init__(settings)
        self._limit = timedelta(hours=settings.max_hours)

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet in ctx.cabinets:
            for slot in cabinet.slots:
                if slot.state is not SlotState.CHARGING or slot.since is None:
                    continue
                if ctx.now - slot.since <= self._limit:
                    continue
                tag = expected_asset_tag(ctx.org, cabinet, slot)
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {"since": slot.since.isoformat()}))
        return findings


class SlotOverpowerSettings(RuleSettings):
    pending_s: float = Field(default=60.0, ge=0, description="above the rating this long")
    rating_w: float = Field(
        default=30.0, gt=0,
        description="default slot rating; a 20 W charger draws ~21 W AC (hardware.md), 30 W is a GUESS",
    )
    severity: Severity = Field(default=Severity.CRITICAL, description="info, warning or critical")


class SlotOverpower(SettingsRule):
    name = "slot_overpower"

    def __init__(self, settings: SlotOverpowerSettings) -> None:
        super().__init__(settings)
        self._rating = settings.rating_w

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet in ctx.cabinets:
            configured = ctx.org.cabinet(cabinet.site, cabinet.cabinet)
            rating = (configured.slot_rating_w if configured and configured.slot_rating_w
                      else self._rating)
            for slot in cabinet.slots:
                if slot.power_w is None or slot.power_w <= rating:
                    continue
                tag = expected_asset_tag(ctx.org, cabinet, slot)
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {"power_w": f"{slot.power_w:.1f}",
                                         "rating_w": f"{rating:.1f}"}))
        return findings
