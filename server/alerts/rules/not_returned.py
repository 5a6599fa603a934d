"""ipad_not_returned: in a shared-pool school, a slot whose iPad should be there is still empty at
the school's return check time on a school day.

A cabinet without presence inputs cannot see a *full* iPad being taken out, so such a slot becomes
``unknown`` while the door is open (docs/classification.md). If it is still idle at the check, the
iPad is missing, or it came back and does not charge — an iPad back from lessons is never full.
Both need someone to look: it fires too, with ``reason = idle_unknown``. A slot that is unknown
because its meter does not answer (no power reading) is the device-fault alert's business.

The alert holds from that check until the iPad is back: an iPad taken out before the last check and
not returned since (``since`` ≤ the check) is missing, one taken out after the check is not (yet).
Weekends, public and school holidays have no check, so nothing new fires then.
"""

from __future__ import annotations

from pydantic import Field

from cabinet_agent.protocol import SlotState
from server.org import Policy

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, slot_labels

__all__ = ["NotReturned", "NotReturnedSettings"]


class NotReturnedSettings(RuleSettings):
    pending_s: float = Field(
        default=300.0, ge=0, description="grace after the check time (a late return does not page)"
    )
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class NotReturned(SettingsRule):
    name = "ipad_not_returned"

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet, groups in ctx.grouped():
            candidates = groups.empty_or_idle_unknown
            if not candidates:
                continue
            school = ctx.school(cabinet.site)
            if school is None or school.policy is not Policy.SHARED_POOL:
                continue
            check = ctx.last_check(cabinet.site, school.return_check)
            if check is None:
                continue
            for index in candidates:
                slot = cabinet.slots[index]
                tag = ctx.expected_tags(cabinet)[index]
                if tag is None:
                    continue
                if slot.since is not None and slot.since > check.utc:
                    continue  # taken out after the last check: not missing yet
                idle_unknown = slot.state is SlotState.UNKNOWN
                reason = "idle_unknown" if idle_unknown else "empty"
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {"check": check.text, "reason": reason}))
        return findings
