"""ipad_not_returned: a slot whose iPad should be there is empty since before the school's last
return check on a school day — as far as the hardware can know it (docs/classification.md).

* **Certainly empty** (a presence input says so, or the agent saw it leave while it charged): the
  alert holds from the check (plus the grace period) until the iPad is back.
* **Empty by evidence** (a power-only cabinet: a full iPad draws ~0 W and can be taken unseen; the
  agent says ``empty`` with certainty ``probable`` once no top-up pulse came for the whole evidence
  window): it is gone *now*, and left at some time after ``unseen_since`` (the door opening after
  its last draw) — not necessarily before the last check (a one-to-one iPad still in its slot at
  Friday's check and taken home for the holidays after it is no news). So the verdict counts from
  its own time (``since``): the alert fires at the first check after it, and says what is known:
  no sign of the iPad since the door opened then.
* A charged slot that *may* have been emptied (``probable``) is no alert: the dashboard and the
  digest list it as "not confirmed since …". A slot the agent cannot judge never is one.

Shared-pool schools check after lessons (``return_check``, default 16:30); one-to-one schools, whose
pupils take their iPads home, check in the morning (their ``return_check``, default 08:30): out at
night is normal, missing after the morning check is not. Weekends, public and school holidays have
no check, so nothing new fires then (notifications follow the calendar too: server/notify).
"""

from __future__ import annotations

from pydantic import Field

from cabinet_agent.common.protocol import Certainty

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, slot_labels

__all__ = ["NotReturned", "NotReturnedSettings"]


class NotReturnedSettings(RuleSettings):
    pending_s: float = Field(
        default=300.0, ge=0, description="grace after the check time (a late return does not page)"
    )
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class NotReturned(SettingsRule):
    name = "ipad_not_returned"
    fresh_data_only = True  # nothing new from an away agent's last state (engine.py)

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet, groups in ctx.grouped():
            candidates = groups.empty
            if not candidates:
                continue
            school = ctx.school(cabinet.site)
            if school is None:
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
                    continue  # empty (or known to be) only since after the last check: not yet
                by_evidence = slot.certainty is Certainty.PROBABLE
                annotations = {"check": check.text, "reason": "no_sign" if by_evidence else "empty"}
                if by_evidence:
                    unseen = slot.unseen_since or slot.since
                    if unseen is not None:
                        annotations["unseen_since"] = unseen.isoformat()
                if by_evidence and slot.last_draw_at is not None:
                    annotations["last_draw_at"] = slot.last_draw_at.isoformat()
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag), annotations))
        return findings
