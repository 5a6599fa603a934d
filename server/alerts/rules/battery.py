"""battery_worn: iPads whose battery holds clearly less than it did when new.

The judgement comes from charge sessions (``server.battery.BatteryAgeing`` is one source); this rule
only places the flagged asset tags in their cabinet and slot. Without a source it finds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import Field

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, expected_asset_tag, slot_labels

__all__ = ["BatteryHealthSource", "BatteryWorn", "BatteryWornSettings", "WornBattery"]


class WornBattery(Protocol):
    @property
    def asset_tag(self) -> str: ...

    @property
    def remaining(self) -> float:
        """Recent energy per full charge / the device's own early baseline."""

    @property
    def full_charges(self) -> int: ...


class BatteryHealthSource(Protocol):
    def worn(self) -> Sequence[WornBattery]:
        """Asset tags whose battery is judged worn now."""


class BatteryWornSettings(RuleSettings):
    severity: Severity = Field(default=Severity.INFO, description="info, warning or critical")


class BatteryWorn(SettingsRule):
    name = "battery_worn"

    def __init__(self, settings: BatteryWornSettings, source: BatteryHealthSource | None) -> None:
        super().__init__(settings)
        self._source = source

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        if self._source is None:
            return []
        worn = {w.asset_tag: w for w in self._source.worn()}
        findings = []
        for cabinet in ctx.cabinets:
            for slot in cabinet.slots:
                tag = expected_asset_tag(ctx.org, cabinet, slot)
                if tag is None or tag not in worn:
                    continue
                w = worn[tag]
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {"ratio_pct": f"{w.remaining * 100:.0f}",
                                         "full_charges": str(w.full_charges)}))
        return findings
