"""Where alert state lives: alerts, silences, acknowledgements and the notification log.

Four small interfaces; ``MemoryState`` implements them for tests and for a collector without a
state dir, ``server.alerts.sqlite.SqliteState`` durably.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from .model import Alert
from .silence import Silence

__all__ = [
    "Ack",
    "AckStore",
    "AlertStore",
    "LogEntry",
    "MemoryAlertStore",
    "MemoryState",
    "NotificationLog",
    "SilenceStore",
]


@dataclass(frozen=True, slots=True)
class Ack:
    """Someone has taken an alert on. Belongs to one alert instance (fingerprint + active_at): if
    the alert resolves and comes back, the new one is not acknowledged."""

    fingerprint: str
    active_at: datetime
    by: str
    comment: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LogEntry:
    """What was last sent on one integration of one group (Alertmanager's nflog entry)."""

    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: datetime


class AlertStore(Protocol):
    def active(self) -> list[Alert]:
        """Alerts not yet resolved (pending or firing), at most one per fingerprint."""

    def get_active(self, fingerprint: str) -> Alert | None: ...

    def put_active(self, alert: Alert) -> None:
        """Insert or replace the active alert with this fingerprint."""

    def discard_active(self, fingerprint: str) -> None:
        """Forget an active alert that never fired (it needs no 'resolved' record)."""

    def resolve(self, fingerprint: str, ends_at: datetime,
                annotations: Mapping[str, str] | None = None) -> Alert | None:
        """Move the active alert to the resolved history with ``ends_at`` set and ``annotations``
        merged into its own."""

    def all(self) -> list[Alert]:
        """Active and resolved alerts, oldest first."""

    def purge_resolved(self, ended_before: datetime) -> int:
        """Drop resolved alerts that ended before the given time; returns how many."""


class SilenceStore(Protocol):
    def add_silence(self, silence: Silence) -> None: ...

    def expire_silence(self, silence_id: str, now: datetime) -> Silence | None:
        """End the silence now; None if there is no such silence that has not ended."""

    def silences(self) -> list[Silence]: ...


class AckStore(Protocol):
    def acknowledge(self, ack: Ack) -> None: ...

    def acks(self) -> list[Ack]: ...


class NotificationLog(Protocol):
    def log_entry(self, key: str) -> LogEntry | None: ...

    def log_sent(self, key: str, entry: LogEntry) -> None: ...


def _resolved(alert: Alert, ends_at: datetime, annotations: Mapping[str, str] | None) -> Alert:
    return Alert(alert.labels, {**alert.annotations, **(annotations or {})}, alert.active_at,
                 alert.starts_at, ends_at)


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

    def resolve(self, fingerprint: str, ends_at: datetime,
                annotations: Mapping[str, str] | None = None) -> Alert | None:
        with self._lock:
            alert = self._active.pop(fingerprint, None)
            if alert is None:
                return None
            resolved = _resolved(alert, ends_at, annotations)
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


class MemoryState(MemoryAlertStore):
    """Every store in memory: lost on restart, so only for tests and a collector without state."""

    def __init__(self) -> None:
        super().__init__()
        self._silences: dict[str, Silence] = {}
        self._acks: dict[tuple[str, datetime], Ack] = {}
        self._log: dict[str, LogEntry] = {}

    def add_silence(self, silence: Silence) -> None:
        with self._lock:
            self._silences[silence.id] = silence

    def expire_silence(self, silence_id: str, now: datetime) -> Silence | None:
        with self._lock:
            silence = self._silences.get(silence_id)
            if silence is None or silence.expired(now):
                return None
            ended = _ended(silence, now)
            self._silences[silence_id] = ended
            return ended

    def silences(self) -> list[Silence]:
        with self._lock:
            return sorted(self._silences.values(), key=lambda s: s.starts_at)

    def acknowledge(self, ack: Ack) -> None:
        with self._lock:
            self._acks[(ack.fingerprint, ack.active_at)] = ack

    def acks(self) -> list[Ack]:
        with self._lock:
            return list(self._acks.values())

    def log_entry(self, key: str) -> LogEntry | None:
        with self._lock:
            return self._log.get(key)

    def log_sent(self, key: str, entry: LogEntry) -> None:
        with self._lock:
            self._log[key] = entry


def _ended(silence: Silence, now: datetime) -> Silence:
    """The silence ended now (or, one that has not begun, at its start: never active)."""
    return replace(silence, ends_at=max(now, silence.starts_at))
