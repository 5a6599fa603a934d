"""What every rule shares: the context it reads, what it returns, its settings, label helpers.

A rule is a pure function of the fleet state, the clock and the calendar (``RuleContext``) that
returns the findings that hold *now*; how long they must hold (the pending period) and what happens
next is the engine's job. Rules judge offline cabinets too, on their last known state: their alerts
then stay (muted by the cabinet_offline inhibition) instead of resolving for lack of data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field

from cabinet_agent.common.protocol import Certainty, SlotState
from server.fleet import CabinetKey, CabinetView, SlotView
from server.org import CabinetConfig, Organisation, SchoolConfig
from server.schoolcal import Calendars, SchoolCalendar

__all__ = [
    "Check",
    "Finding",
    "Rule",
    "RuleCache",
    "RuleContext",
    "RuleSettings",
    "Severity",
    "SlotGroups",
    "cabinet_labels",
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


_CHARGING, _EMPTY, _UNKNOWN = SlotState.CHARGING, SlotState.EMPTY, SlotState.UNKNOWN
_PRESENT_IDLE, _FAULT = SlotState.PRESENT_IDLE, SlotState.FAULT
_CANNOT_TELL = Certainty.CANNOT_TELL


@dataclass(frozen=True, slots=True)
class SlotGroups:
    """One cabinet's slots sorted into what the slot rules look at (indices into
    ``cabinet.slots``), so that each rule visits its few slots instead of all 32.

    Only what the hardware can back up becomes a candidate (docs/classification.md): a slot the
    agent cannot judge (``cannot_tell``) is never an iPad problem, and a charged slot that may have
    been emptied unseen (``probable``) is not missing until the agent says ``empty``."""

    charging: tuple[int, ...]
    # present_idle known to need a charge, or a fault of the iPad's charge (not too_long or
    # overpower: those are charging_too_long's and slot_overpower's)
    idle_or_fault: tuple[int, ...]
    too_long: tuple[int, ...]  # the agent says: charging for longer than any iPad needs
    empty: tuple[int, ...]  # empty for certain (seen leaving) or by evidence (no sign for long)
    unjudgeable: tuple[int, ...]  # cannot tell, with a reading (a slot without one is a device's)
    max_power_w: float | None  # of the slots that have a reading

    @classmethod
    def of(cls, slots: Sequence[SlotView]) -> SlotGroups:
        charging: list[int] = []
        idle: list[int] = []
        too_long: list[int] = []
        missing: list[int] = []
        blind: list[int] = []
        top: float | None = None
        for index, slot in enumerate(slots):
            state, power, certainty = slot.state, slot.power_w, slot.certainty
            if power is not None and (top is None or power > top or power != power):
                top = power  # (a NaN stays on top: it is above any rating, as the rule judges it)
            if state is _CHARGING:
                charging.append(index)
            elif state is _FAULT:
                fault = slot.fault
                if fault == "too_long":
                    too_long.append(index)
                elif fault != "overpower":
                    idle.append(index)
            elif state is _PRESENT_IDLE and certainty is not _CANNOT_TELL:
                idle.append(index)
            elif state is _EMPTY and certainty is not _CANNOT_TELL:
                missing.append(index)
            elif state is _UNKNOWN and power is not None:
                blind.append(index)
        return cls(tuple(charging), tuple(idle), tuple(too_long), tuple(missing), tuple(blind), top)


class _SlotFacts:
    __slots__ = ("groups", "slots", "tags")

    def __init__(self, slots: tuple[SlotView, ...]) -> None:
        self.slots = slots
        self.groups = SlotGroups.of(slots)
        self.tags: tuple[str | None, ...] | None = None


class RuleCache:
    """What the rules look up per cabinet and slot, kept by the engine across ticks.

    The organisation's schools and cabinets by id (``Organisation.school``/``cabinet`` scan their
    lists, far too slow per cabinet at 80,000; the organisation does not change while the collector
    runs). And per cabinet its ``SlotGroups`` and expected asset tags, valid as long as its record
    holds the same ``slots`` tuple: records are immutable and replaced on every change, so a
    cabinet the sweep evaluates again without news costs no pass over its slots."""

    def __init__(self, org: Organisation) -> None:
        self.org = org
        self._schools: dict[str, SchoolConfig] = {}
        for school in org.schools:
            self._schools.setdefault(school.site, school)
        self._cabinets: dict[CabinetKey, CabinetConfig] = {}
        for cabinet in org.cabinets:
            self._cabinets.setdefault((cabinet.school, cabinet.id), cabinet)
        self._slots: dict[CabinetKey, _SlotFacts] = {}

    def school(self, site: str) -> SchoolConfig | None:
        return self._schools.get(site)

    def cabinet_config(self, site: str, cabinet: str) -> CabinetConfig | None:
        return self._cabinets.get((site, cabinet))

    def _facts(self, cabinet: CabinetView) -> _SlotFacts:
        key = (cabinet.site, cabinet.cabinet)
        facts = self._slots.get(key)
        if facts is None or facts.slots is not cabinet.slots:
            facts = self._slots[key] = _SlotFacts(cabinet.slots)
        return facts

    def slot_groups(self, cabinet: CabinetView) -> SlotGroups:
        return self._facts(cabinet).groups

    def expected_tags(self, cabinet: CabinetView) -> tuple[str | None, ...]:
        """The asset tag of every slot of the cabinet (the inventory's, carried by the fleet's
        records: server/assets.py), in the order of ``slots``."""
        facts = self._facts(cabinet)
        if facts.tags is None:
            facts.tags = tuple(slot.asset_tag for slot in cabinet.slots)
        return facts.tags


class Check(NamedTuple):
    """A school's last check moment: local (as it is shown), in UTC (to compare), as text."""

    local: datetime
    utc: datetime
    text: str


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule judges: ``cabinets`` are the ones to evaluate now (the engine hands out the
    cabinets that changed plus a slice of the fleet, see engine.py): a rule must not assume that
    it sees every cabinet, nor that it sees one at every tick, nor look at other cabinets.

    The helpers look the organisation up by id and share per-cabinet answers between the rules
    (expected asset tags, slots by state, a school's last check), in ``cache`` across ticks."""

    cabinets: Sequence[CabinetView]
    now: datetime
    # Since when the collector has been receiving without a break: no cabinet can be judged silent
    # for a time in which we could not have heard it.
    receiving_since: datetime
    org: Organisation
    calendars: Calendars
    cache: RuleCache | None = None
    _own_cache: list[RuleCache] = field(default_factory=list, repr=False, compare=False)
    _by_key: dict[CabinetKey, CabinetView] = field(default_factory=dict, repr=False, compare=False)
    _grouped: list[tuple[CabinetView, SlotGroups]] = field(default_factory=list, repr=False,
                                                           compare=False)
    _checks: dict[tuple[SchoolCalendar, time | tuple[time, ...]], Check | None] = field(
        default_factory=dict, repr=False, compare=False)

    def _cache(self) -> RuleCache:
        if self.cache is not None:
            return self.cache
        if not self._own_cache:
            self._own_cache.append(RuleCache(self.org))
        return self._own_cache[0]

    def school(self, site: str) -> SchoolConfig | None:
        return self._cache().school(site)

    def cabinet_config(self, site: str, cabinet: str) -> CabinetConfig | None:
        return self._cache().cabinet_config(site, cabinet)

    def cabinet(self, key: CabinetKey) -> CabinetView | None:
        """The evaluated cabinet with this key, if it is among ``cabinets``."""
        if not self._by_key:
            self._by_key.update((c.key, c) for c in self.cabinets)
        return self._by_key.get(key)

    def expected_tags(self, cabinet: CabinetView) -> tuple[str | None, ...]:
        """The asset tag of every slot of the cabinet (the inventory's, carried by the fleet's
        records: server/assets.py), in the order of ``slots``."""
        return self._cache().expected_tags(cabinet)

    def slot_groups(self, cabinet: CabinetView) -> SlotGroups:
        return self._cache().slot_groups(cabinet)

    def grouped(self) -> list[tuple[CabinetView, SlotGroups]]:
        """Every cabinet with its ``SlotGroups``: what the slot rules iterate."""
        if not self._grouped and self.cabinets:
            cache = self._cache()
            self._grouped.extend((cabinet, cache.slot_groups(cabinet)) for cabinet in self.cabinets)
        return self._grouped

    def last_check(self, site: str, at: time | tuple[time, ...]) -> Check | None:
        """The site calendar's ``last_check(now, at)``; once per calendar (most schools share
        the district's) and time(s) of day. None if there is none."""
        calendar = self.calendars.for_site(site)
        memo_key = (calendar, at)
        if memo_key not in self._checks:
            check = calendar.last_check(self.now, at)
            self._checks[memo_key] = (None if check is None
                                      else Check(check, check.astimezone(UTC), check.isoformat()))
        return self._checks[memo_key]


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
