"""Where alert state lives: alerts, silences, acknowledgements and the notification log.

Four small interfaces; ``MemoryState`` implements them for tests and for a collector without a
state dir, ``server.alerts.sqlite.SqliteState`` durably. Both keep the active alerts in memory by
fingerprint and by cabinet (``ActiveIndex``): the engine asks per tick only for the alerts of the
cabinets it evaluates, and that must not cost a pass over every alert.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from .model import Alert
from .silence import Silence

__all__ = [
    "Ack",
    "AckStore",
    "ActiveIndex",
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

    def active_for(self, cabinet_keys: Iterable[tuple[str, str]]) -> list[Alert]:
        """The active alerts whose (site, cabinet) labels are one of ``cabinet_keys``; costs the
        number of those alerts, not of all alerts."""

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


class ActiveIndex:
    """Active alerts by fingerprint (in the order they were first put) and by cabinet. Not
    thread-safe on its own: the stores call it under their lock."""

    def __init__(self, alerts: Iterable[Alert] = ()) -> None:
        self._by_fingerprint: dict[str, Alert] = {}
        self._by_cabinet: dict[tuple[str, str], dict[str, Alert]] = {}
        for alert in alerts:
            self.put(alert)

    def __len__(self) -> int:
        return len(self._by_fingerprint)

    def __iter__(self) -> Iterator[Alert]:
        return iter(self._by_fingerprint.values())

    def get(self, fingerprint: str) -> Alert | None:
        return self._by_fingerprint.get(fingerprint)

    def put(self, alert: Alert) -> None:
        self._by_fingerprint[alert.fingerprint] = alert
        self._by_cabinet.setdefault(alert.cabinet_key, {})[alert.fingerprint] = alert

    def pop(self, fingerprint: str) -> Alert | None:
        alert = self._by_fingerprint.pop(fingerprint, None)
        if alert is not None:
            alerts = self._by_cabinet[alert.cabinet_key]
            del alerts[fingerprint]
            if not alerts:
                del self._by_cabinet[alert.cabinet_key]
        return alert

    def for_cabinets(self, cabinet_keys: Iterable[tuple[str, str]]) -> list[Alert]:
        found: list[Alert] = []
        for key in cabinet_keys:
            alerts = self._by_cabinet.get(key)
            if alerts:
                found.extend(alerts.values())
        return found


class MemoryAlertStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = ActiveIndex()
        self._resolved: list[Alert] = []
        self._oldest_end: datetime | None = None  # of the resolved: purging nothing costs nothing

    def active(self) -> list[Alert]:
        with self._lock:
            return list(self._active)

    def get_active(self, fingerprint: str) -> Alert | None:
        with self._lock:
            return self._active.get(fingerprint)

    def active_for(self, cabinet_keys: Iterable[tuple[str, str]]) -> list[Alert]:
        with self._lock:
            return self._active.for_cabinets(cabinet_keys)

    def put_active(self, alert: Alert) -> None:
        if alert.ends_at is not None:
            raise ValueError("an active alert has no ends_at")
        with self._lock:
            self._active.put(alert)

    def discard_active(self, fingerprint: str) -> None:
        with self._lock:
            self._active.pop(fingerprint)

    def resolve(self, fingerprint: str, ends_at: datetime,
                annotations: Mapping[str, str] | None = None) -> Alert | None:
        with self._lock:
            alert = self._active.pop(fingerprint)
            if alert is None:
                return None
            resolved = _resolved(alert, ends_at, annotations)
            self._resolved.append(resolved)
            if self._oldest_end is None or ends_at < self._oldest_end:
                self._oldest_end = ends_at
            return resolved

    def all(self) -> list[Alert]:
        with self._lock:
            alerts = [*self._resolved, *self._active]
        return sorted(alerts, key=lambda a: a.active_at)

    def purge_resolved(self, ended_before: datetime) -> int:
        with self._lock:
            if self._oldest_end is None or self._oldest_end >= ended_before:
                return 0
            keep = [a for a in self._resolved if a.ends_at is None or a.ends_at >= ended_before]
            purged = len(self._resolved) - len(keep)
            self._resolved = keep
            ends = [a.ends_at for a in keep if a.ends_at is not None]
            self._oldest_end = min(ends) if ends else None
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
