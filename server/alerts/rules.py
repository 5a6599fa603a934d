"""Alert rules: pure functions of fleet state and the current time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from server.fleet import CabinetView, FleetStatus

__all__ = ["CabinetOffline", "Finding", "Rule"]


@dataclass(frozen=True, slots=True)
class Finding:
    """The rule's condition holds for these labels right now."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]


class Rule(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def pending(self) -> timedelta:
        """How long the condition must hold before the alert fires."""

    def evaluate(self, cabinets: Sequence[CabinetView], now: datetime,
                 receiving_since: datetime) -> list[Finding]:
        """``receiving_since``: since when the collector has been receiving without a break;
        no cabinet can be judged silent for a time in which we could not have heard it."""


class CabinetOffline:
    """A cabinet is offline when its Last Will arrived (reason ``lwt``), it stopped on purpose
    (``stopped``), or it is silent: nothing received for max(silence_factor × its telemetry
    interval, min_silence_s) (``silence``). It is fine again once online and talking."""

    name = "cabinet_offline"

    def __init__(self, *, pending_s: float, silence_factor: float, min_silence_s: float) -> None:
        if pending_s < 0 or silence_factor < 1 or min_silence_s <= 0:
            raise ValueError("need pending_s >= 0, silence_factor >= 1, min_silence_s > 0")
        self.pending = timedelta(seconds=pending_s)
        self._factor = silence_factor
        self._min_silence_s = min_silence_s

    def silence_limit(self, cabinet: CabinetView) -> timedelta:
        interval = cabinet.telemetry_interval_s or 0.0
        return timedelta(seconds=max(self._factor * interval, self._min_silence_s))

    def reason(self, cabinet: CabinetView, now: datetime, receiving_since: datetime) -> str | None:
        if cabinet.status is FleetStatus.OFFLINE:
            return "lwt"
        if cabinet.status is FleetStatus.STOPPED:
            return "stopped"
        if now - max(cabinet.last_seen_at, receiving_since) > self.silence_limit(cabinet):
            return "silence"
        return None

    def evaluate(self, cabinets: Sequence[CabinetView], now: datetime,
                 receiving_since: datetime) -> list[Finding]:
        findings = []
        for cabinet in cabinets:
            reason = self.reason(cabinet, now, receiving_since)
            if reason is None:
                continue
            labels = {"alertname": self.name, "site": cabinet.site, "cabinet": cabinet.cabinet}
            annotations = {"reason": reason}
            if reason == "silence":
                annotations["last_seen_at"] = cabinet.last_seen_at.isoformat()
            elif cabinet.status_reason:
                annotations["detail"] = cabinet.status_reason
            findings.append(Finding(labels, annotations))
        return findings
