"""Where alerts live. In memory for now; the interface is small so that SQLite can replace it."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol

from .model import Alert

__all__ = ["AlertStore", "MemoryAlertStore"]


class AlertStore(Protocol):
    def active(self) -> list[Alert]:
        """Alerts not yet resolved (pending or firing), at most one per fingerprint."""

    def get_active(self, fingerprint: str) -> Alert | None: ...

    def put_active(self, alert: Alert) -> None:
        """Insert or replace the active alert with this fingerprint."""

    def discard_active(self, fingerprint: str) -> None:
        """Forget an active alert that never fired (it needs no 'resolved' record)."""

    def resolve(self, fingerprint: str, ends_at: datetime) -> Alert | None:
        """Move the active alert to the resolved history with ``ends_at`` set."""

    def all(self) -> list[Alert]:
        """Active and resolved alerts, oldest first."""

    def purge_resolved(self, ended_before: datetime) -> int:
        """Drop resolved alerts that ended before the given time; returns how many."""


class MemoryAlertStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, Alert] = {}
        self._resolved: list[Alert] = []

    def active(self) -> list[Alert]:
        with self._lock:
            return list(self._active.values())

    def get_active(self, fingerprint: str) -> Alert | None:
        with self._lock:
            return self._active.get(fingerprint)

    def put_active(self, alert: Alert) -> None:
        if alert.ends_at is not None:
            raise ValueError("an active alert has no ends_at")
        with self._lock:
            self._active[alert.fingerprint] = alert

    def discard_active(self, fingerprint: str) -> None:
        with self._lock:
            self._active.pop(fingerprint, None)

    def resolve(self, fingerprint: str, ends_at: datetime) -> Alert | None:
        with self._lock:
            alert = self._active.pop(fingerprint, None)
            if alert is None:
                return None
            resolved = Alert(alert.labels, alert.annotations, alert.active_at, alert.starts_at,
                             ends_at)
            self._resolved.append(resolved)
            return resolved

    def all(self) -> list[Alert]:
        with self._lock:
            alerts = [*self._resolved, *self._active.values()]
        return sorted(alerts, key=lambda a: a.active_at)

    def purge_resolved(self, ended_before: datetime) -> int:
        with self._lock:
            keep = [a for a in self._resolved if a.ends_at is None or a.ends_at >= ended_before]
            purged = len(self._resolved) - len(keep)
            self._resolved = keep
            return purged
