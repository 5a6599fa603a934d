"""cabinet_offline: Last Will, a stop on purpose, or silence. On return, the boot id tells a power
loss (the agent started again: new boot id) from a network loss (same boot id)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from server.fleet import CabinetView, FleetStatus

from ..model import Alert
from .base import Finding, RuleContext, Severity, cabinet_labels

__all__ = ["CabinetOffline"]


class CabinetOffline:
    """A cabinet is offline when its Last Will arrived (reason ``lwt``), it stopped on purpose
    (``stopped``), or it is silent: nothing received for max(silence_factor × its telemetry
    interval, min_silence_s) (``silence``). It is fine again once online and talking."""

    name = "cabinet_offline"

    def __init__(self, *, pending_s: float, silence_factor: float, min_silence_s: float,
                 severity: Severity = Severity.CRITICAL) -> None:
        if pending_s < 0 or silence_factor < 1 or min_silence_s <= 0:
            raise ValueError("need pending_s >= 0, silence_factor >= 1, min_silence_s > 0")
        self.pending = timedelta(seconds=pending_s)
        self.severity = severity
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

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        findings = []
        for cabinet in ctx.cabinets:
            reason = self.reason(cabinet, ctx.now, ctx.receiving_since)
            if reason is None:
                continue
            annotations = {"reason": reason}
            if reason == "silence":
                annotations["last_seen_at"] = cabinet.last_seen_at.isoformat()
            elif cabinet.status_reason:
                annotations["detail"] = cabinet.status_reason
            findings.append(Finding(cabinet_labels(self.name, cabinet), annotations))
        return findings

    def on_resolve(self, alert: Alert, ctx: RuleContext) -> Mapping[str, str]:
        """Why it was gone: a boot change since the alert began means the agent started anew (the
        Pi lost power or rebooted); the same boot id means only the network was away."""
        cabinet = ctx.cabinet(alert.cabinet_key)  # the engine evaluated it: that is why it resolves
        if cabinet is None:
            return {}
        restarted = any(change.seen_at >= alert.active_at for change in cabinet.boot_changes)
        return {"return_cause": "power_loss" if restarted else "network_loss"}
