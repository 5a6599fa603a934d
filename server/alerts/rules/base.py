"""What every rule shares: the context it reads, what it returns, its settings, label helpers.

A rule is a pure function of the fleet state, the clock and the calendar (``RuleContext``) that
returns the findings that hold *now*; how long they must hold (the pending period) and what happens
next is the engine's job. Rules judge offline cabinets too, on their last known state: their alerts
then stay (muted by the cabinet_offline inhibition) instead of resolving for lack of data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from server.fleet import CabinetView, SlotView
from server.org import Organisation
from server.schoolcal import Calendars

__all__ = [
    "Finding",
    "Rule",
    "RuleContext",
    "RuleSettings",
    "Severity",
    "cabinet_labels",
    "expected_asset_tag",
    "slot_labels",
]


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Finding:
    """The rule's condition holds for these labels right now."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RuleContext:
    cabinets: Sequence[CabinetView]
    now: datetime
    # Since when the collector has been receiving without a break: no cabinet can be judged silent
    # for a time in which we could not have heard it.
    receiving_since: datetime
    org: Organisation
    calendars: Calendars


class Rule(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def pending(self) -> timedelta:
        """How long the condition must hold before the alert fires."""

    @property
    def severity(self) -> Severity: ...

    def evaluate(self, ctx: RuleContext) -> list[Finding]: ...


class RuleSettings(BaseModel):
    """Every rule's settings start with these; each rule adds its thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="evaluate this rule")
    pending_s: float = Field(default=0.0, ge=0, description="the condition must hold this long")
    severity: Severity = Field(default=Severity.WARNING, description="info, warning or critical")


class SettingsRule:
    """A rule whose pending period and severity come from its settings."""

    name: str

    def __init__(self, settings: RuleSettings) -> None:
        self.pending = timedelta(seconds=settings.pending_s)
        self.severity = settings.severity


def cabinet_labels(name: str, cabinet: CabinetView) -> dict[str, str]:
    return {"alertname": name, "site": cabinet.site, "cabinet": cabinet.cabinet}


def slot_labels(name: str, cabinet: CabinetView, slot: SlotView, tag: str | None) -> dict[str, str]:
    labels = {**cabinet_labels(name, cabinet), "slot": str(slot.slot)}
    if tag:
        labels["asset_tag"] = tag
    return labels


def expected_asset_tag(org: Organisation, cabinet: CabinetView, slot: SlotView) -> str | None:
    """The asset tag that belongs in this slot: from the organisation config, else the birth's."""
    configured = org.cabinet(cabinet.site, cabinet.cabinet)
    if configured is not None and slot.slot in configured.slots:
        return configured.slots[slot.slot]
    return slot.asset_tag
