"""slot_unjudgeable: a slot the agent still cannot judge long after it should have been able to.

A slot is ``cannot_tell`` after the agent starts (until a draw or the evidence window decides) and
while its reading is missing (a device fault: that is ``device_fault``'s business). On a cabinet
that measures slot power, a slot with a reading that stays ``cannot_tell`` for several evidence
windows is a sensor problem — a channel that reads zero whatever is plugged in, supply that never
comes — not an iPad problem: it goes to the technicians, never to the school as "not returned".
Cabinets without slot meters (a door contact only) cannot judge slots by design: no alert.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from server.presence import judges_slots

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, slot_labels

__all__ = ["SlotUnjudgeable", "SlotUnjudgeableSettings"]


class SlotUnjudgeableSettings(RuleSettings):
    windows: float = Field(
        default=3.0, gt=1, description="cannot tell for this many evidence windows (the agent's)")
    fallback_days: float = Field(
        default=15.0, gt=0, description="when the agent names no evidence window")
    severity: Severity = Field(default=Severity.INFO, description="info, warning or critical")


class SlotUnjudgeable(SettingsRule):
    name = "slot_unjudgeable"
    fresh_data_only = True  # nothing new from an away agent's last state (engine.py)

    def __init__(self, settings: SlotUnjudgeableSettings) -> None:
        super().__init__(settings)
        self._settings = settings

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet, groups in ctx.grouped():
            if not groups.unjudgeable or not judges_slots(cabinet):
                continue
            window = cabinet.sensing.evidence_window_s if cabinet.sensing is not None else None
            limit = (timedelta(seconds=window * self._settings.windows) if window
                     else timedelta(days=self._settings.fallback_days))
            for index in groups.unjudgeable:
                slot = cabinet.slots[index]
                if slot.since is None or ctx.now - slot.since < limit:
                    continue
                tag = ctx.expected_tags(cabinet)[index]
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {"since": slot.since.isoformat()}))
        return findings
