"""An alert is labels + annotations + times, as in Prometheus Alertmanager.

Its identity is the fingerprint of its sorted labels. Whether it is pending, firing or resolved is
derived from its times and the clock, never stored as a flag, so it cannot disagree with them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

__all__ = ["Alert", "AlertState", "fingerprint"]


class AlertState(StrEnum):
    PENDING = "pending"  # the condition holds, but not yet for the rule's pending period
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(labels: Mapping[str, str]) -> str:
    """Stable 16-hex-digit id of a label set, independent of insertion order."""
    digest = hashlib.sha256()
    for name in sorted(labels):
        # \xff cannot occur in UTF-8 text, so "a=b" + "c" and "a=bc" never collide.
        digest.update(name.encode())
        digest.update(b"\xff")
        digest.update(labels[name].encode())
        digest.update(b"\xff")
    return digest.hexdigest()[:16]


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class Alert:
    """``active_at``: the condition became true. ``starts_at``: firing begins (active_at + the
    rule's pending period). ``ends_at``: the condition cleared after firing (None while active)."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    active_at: datetime
    starts_at: datetime
    ends_at: datetime | None = None
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        if "alertname" not in self.labels:
            raise ValueError("an alert needs an 'alertname' label")
        if self.starts_at < self.active_at:
            raise ValueError("starts_at must not be before active_at")
        if self.ends_at is not None and self.ends_at < self.active_at:
            raise ValueError("ends_at must not be before active_at")
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "annotations", _frozen(self.annotations))
        object.__setattr__(self, "fingerprint", fingerprint(self.labels))

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "warning")

    @property
    def cabinet_key(self) -> tuple[str, str]:
        """(site, cabinet): alerts are grouped per cabinet."""
        return (self.labels.get("site", ""), self.labels.get("cabinet", ""))

    def state(self, now: datetime) -> AlertState:
        if self.ends_at is not None and self.ends_at <= now:
            return AlertState.RESOLVED
        if now >= self.starts_at:
            return AlertState.FIRING
        return AlertState.PENDING

    def is_active(self, now: datetime) -> bool:
        return self.state(now) is not AlertState.RESOLVED
