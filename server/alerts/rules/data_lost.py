"""data_lost: events a cabinet's broker acknowledged never reached the collector, and the agent's
outbox cannot send them again (server/integrity.py says how that is proven, docs/reliability.md
when it happens: a broker restarted without persistence, a collector session expired or over
the broker's queue limit).

A loss is an event in the past, not a condition that ends: the alert stays for ``hold_h`` after the
newest proven loss, so that someone sees it, then resolves by itself.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, cabinet_labels

__all__ = ["DataLost", "DataLostSettings"]


class DataLostSettings(RuleSettings):
    hold_h: float = Field(default=24.0, gt=0, description="the alert stays this long after a loss")
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class DataLost(SettingsRule):
    name = "data_lost"

    def __init__(self, settings: DataLostSettings) -> None:
        super().__init__(settings)
        self._hold = timedelta(hours=settings.hold_h)

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet in ctx.cabinets:
            integrity = cabinet.integrity
            lost_at = integrity.events_lost_at
            if integrity.events_lost <= 0 or lost_at is None or ctx.now - lost_at >= self._hold:
                continue
            findings.append(Finding(cabinet_labels(self.name, cabinet),
                                    {"lost": str(integrity.events_lost),
                                     "lost_at": lost_at.isoformat()}))
        return findings
