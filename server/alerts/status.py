"""Each alert with what is known about it now: state, silences, inhibition, acknowledgement.

Inhibition follows Alertmanager: a *firing* source alert mutes the target alerts that share its
``equal`` labels. The rules are fixed here because they express how the hardware works:

* ``cabinet_offline`` mutes every other alert of its cabinet (its readings are stale);
* ``device_fault`` mutes the slot alerts of its cabinet (the slots read "unknown" or wrong);
* a critical alert mutes the warning of the same name on the same cabinet (over_temperature).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .model import Alert, AlertState
from .silence import Silence
from .store import Ack

__all__ = ["INHIBIT_RULES", "AlertStatus", "InhibitRule", "alert_statuses"]


@dataclass(frozen=True, slots=True)
class InhibitRule:
    name: str
    source: Callable[[Mapping[str, str]], bool]
    target: Callable[[Mapping[str, str], Mapping[str, str]], bool]  # (target, source) labels
    equal: tuple[str, ...] = ("site", "cabinet")


INHIBIT_RULES: tuple[InhibitRule, ...] = (
    InhibitRule(
        "offline_mutes_cabinet",
        lambda s: s.get("alertname") == "cabinet_offline",
        lambda t, _s: t.get("alertname") != "cabinet_offline",
    ),
    InhibitRule(
        "device_fault_mutes_slots",
        lambda s: s.get("alertname") == "device_fault",
        lambda t, _s: "slot" in t,
    ),
    InhibitRule(
        "critical_mutes_warning",
        lambda s: s.get("severity") == "critical",
        lambda t, s: t.get("severity") == "warning" and t.get("alertname") == s.get("alertname"),
    ),
)


@dataclass(frozen=True, slots=True)
class AlertStatus:
    alert: Alert
    state: AlertState
    silenced_by: tuple[str, ...] = ()
    inhibited_by: str | None = None  # fingerprint of the alert that mutes this one
    ack: Ack | None = None

    @property
    def muted(self) -> bool:
        return bool(self.silenced_by) or self.inhibited_by is not None

    @property
    def fingerprint(self) -> str:
        return self.alert.fingerprint


def alert_statuses(alerts: Iterable[Alert], silences: Sequence[Silence], acks: Iterable[Ack],
                   now: datetime,
                   rules: Sequence[InhibitRule] = INHIBIT_RULES) -> list[AlertStatus]:
    alerts = list(alerts)
    firing = [a for a in alerts if a.state(now) is AlertState.FIRING]
    sources = _index_sources(firing, rules)
    active_silences = [s for s in silences if s.active(now)]
    ack_by_instance = {(a.fingerprint, a.active_at): a for a in acks}
    result = []
    for alert in alerts:
        state = alert.state(now)
        silenced = tuple(s.id for s in active_silences if s.matches(alert.labels))
        inhibitor = _inhibitor(alert, sources, rules) if state is not AlertState.RESOLVED else None
        ack = ack_by_instance.get((alert.fingerprint, alert.active_at))
        result.append(AlertStatus(alert, state, silenced, inhibitor, ack))
    return result


# Per rule: the firing alerts it could take as source, by the values of its ``equal`` labels,
# each with its position among the firing alerts.
_SourceIndex = list[dict[tuple[str | None, ...], list[tuple[int, Alert]]]]


def _index_sources(firing: Sequence[Alert], rules: Sequence[InhibitRule]) -> _SourceIndex:
    """Linear instead of every alert against every firing alert: a district-wide incident fires
    thousands of alerts at once (bench/fleet_capacity.py measured the quadratic form at 69 % of
    the collector's time with 4,000 firing)."""
    index: _SourceIndex = [{} for _ in rules]
    for position, source in enumerate(firing):
        for by_key, rule in zip(index, rules, strict=True):
            if rule.source(source.labels):
                key = tuple(source.labels.get(k) for k in rule.equal)
                by_key.setdefault(key, []).append((position, source))
    return index


def _inhibitor(target: Alert, sources: _SourceIndex, rules: Sequence[InhibitRule]) -> str | None:
    """The first firing alert (in firing order) that mutes ``target`` under any rule."""
    best: tuple[int, str] | None = None
    for by_key, rule in zip(sources, rules, strict=True):
        for position, source in by_key.get(tuple(target.labels.get(k) for k in rule.equal), ()):
            if best is not None and position >= best[0]:
                break
            if source.fingerprint != target.fingerprint and rule.target(target.labels, source.labels):
                best = (position, source.fingerprint)
                break
    return None if best is None else best[1]
