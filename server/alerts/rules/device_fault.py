"""device_fault: a sensor or meter on the cabinet's bus does not answer (DeviceHealth not ok).

While it lasts, the slots it measures read "unknown"; the alert inhibits the slot alerts under it.
"""

from __future__ import annotations

from pydantic import Field

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, cabinet_labels

__all__ = ["DeviceFault", "DeviceFaultSettings"]


class DeviceFaultSettings(RuleSettings):
    pending_s: float = Field(default=60.0, ge=0, description="a fault must last this long")
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class DeviceFault(SettingsRule):
    name = "device_fault"

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet in ctx.cabinets:
            for device in cabinet.devices:
                if device.ok:
                    continue
                labels = {**cabinet_labels(self.name, cabinet), "device": device.name}
                findings.append(Finding(labels, {"error": device.error or ""}))
        return findings
