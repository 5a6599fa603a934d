"""battery_worn: iPads whose battery holds clearly less than it did when new.

The judgement comes from charge sessions (``server.battery.BatteryAgeing`` is one source); this rule
only places the flagged asset tags in their cabinet and slot. Without a source it finds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final, Protocol

from pydantic import Field

from .base import Finding, RuleContext, RuleSettings, SettingsRule, Severity, slot_labels

__all__ = ["BatteryHealthSource", "BatteryWorn", "BatteryWornSettings", "WornBattery"]

# The source judges from charge sessions, one per device and day: asking it every tick (it goes
# through every device it knows) would cost more than all other rules; once a minute is plenty.
WORN_REFRESH: Final = timedelta(seconds=60)


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
        self._worn: Mapping[str, WornBattery] = {}
        self._fetched_at: datetime | None = None

    def _current(self, now: datetime) -> Mapping[str, WornBattery]:
        """The source's worn batteries by asset tag, asked at most every WORN_REFRESH."""
        if self._source is None:
            return {}
        if self._fetched_at is None or not (now - WORN_REFRESH < self._fetched_at <= now):
            self._worn = {w.asset_tag: w for w in self._source.worn()}
            self._fetched_at = now
        return self._worn

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        worn = self._current(ctx.now)
        if not worn:
            return []
        findings = []
        for cabinet in ctx.cabinets:
            for slot, tag in zip(cabinet.slots, ctx.expected_tags(cabinet), strict=True):
                if tag is None or tag not in worn:
                    continue
                w = worn[tag]
                findings.append(Finding(slot_labels(self.name, cabinet, slot, tag),
                                        {"ratio_pct": f"{w.remaining * 100:.0f}",
                                         "full_charges": str(w.full_charges)}))
        return findings
