"""charging_too_long (a slot charging for longer than any iPad needs) and slot_overpower (a slot
drawing more than its charger can deliver: a wrong or faulty charger).

The agent judges "too long" too (``fault = too_long`` at its own ``max_charge_s``, 8 h by
default): such a slot is this rule's from that moment, not ``ipad_not_charging``'s."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, slot_labels

__all__ = ["ChargingTooLong", "ChargingTooLongSettings", "SlotOverpower", "SlotOverpowerSettings"]


class ChargingTooLongSettings(RuleSettings):
    max_hours: float = Field(
        default=8.0, gt=0,
        description="longest plausible charge (12.9\" iPad Pro on 12 W: 4.5–5 h, hardware.md; GUESS)",
    )
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class ChargingTooLong(SettingsRule):
    name = "charging_too_long"
    fresh_data_only = True  # nothing new from an away agent's last state (engine.py)

    def __init__(self, settings: ChargingTooLongSettings) -> None:
        super().__init__(settings)
        self._limit = timedelta(hours=settings.max_hours)

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        started_before = ctx.now - self._limit
        for cabinet, groups in ctx.grouped():
            for index in groups.charging:
                slot = cabinet.slots[index]
                if slot.since is None or slot.since >= started_before:
                    continue
                tag = ctx.expected_tags(cabinet)[index]
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {"since": slot.since.isoformat()}))
            for index in groups.too_long:
                slot = cabinet.slots[index]
                tag = ctx.expected_tags(cabinet)[index]
                judged = {"since": slot.since.isoformat()} if slot.since else {}
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {**judged, "by": "agent"}))
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
        for cabinet, groups in ctx.grouped():
            top = groups.max_power_w
            if top is None:
                continue
            configured = ctx.cabinet_config(cabinet.site, cabinet.cabinet)
            rating = (configured.slot_rating_w if configured and configured.slot_rating_w
                      else self._rating)
            if top <= rating:
                continue
            for index, slot in enumerate(cabinet.slots):
                if slot.power_w is None or slot.power_w <= rating:
                    continue
                tag = ctx.expected_tags(cabinet)[index]
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {"power_w": f"{slot.power_w:.1f}",
                                         "rating_w": f"{rating:.1f}"}))
        return findings
