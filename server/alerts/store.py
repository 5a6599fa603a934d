"""Where alert state lives: alerts, silences, acknowledgements, the notification log and the
outbox of notifications waiting to be delivered.

Five small interfaces, implemented once on the store by ``server.alerts.state.StoredState`` (a
store in memory for tests and a collector without a state dir). It keeps the active alerts in
memory by fingerprint and by cabinet (``ActiveIndex``): the engine asks per tick only for the
alerts of the cabinets it evaluates, and that must not cost a pass over every alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
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
    "NotificationLog",
    "Outbox",
    "Outgoing",
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


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A notification waiting for delivery on one log key (one group or digest, one notifier).

    At most one per key: a newer message for the key replaces ``message`` and ``entry`` and bumps
    ``version``, but keeps the tries and the back-off (they belong to the receiver, not to the
    text). ``message`` is opaque here (``server.notify`` writes and reads it)."""

    log_key: str
    receiver: str  # Receiver.id: the notifier is found again after a restart
    notifier: str  # Notifier.name within that receiver
    message: str
    entry: LogEntry  # written to the notification log once delivered
    queued_at: datetime
    next_at: datetime  # not tried before this
    attempts: int = 0  # failed tries so far
    version: int = 1
    error: str = ""  # the last failure, redacted


class Outbox(Protocol):
    """The retry queue in front of the receivers: put, read what is due, acknowledge."""

    def enqueue(self, item: Outgoing) -> Outgoing:
        """Queue ``item``, or replace the message and entry queued for its key when they tell
        other news (other firing or resolved alerts); what is stored."""

    def outgoing(self, due_by: datetime | None = None) -> list[Outgoing]:
        """Everything queued (that may be tried by ``due_by``), oldest first."""

    def is_queued(self, log_key: str) -> bool: ...

    def retry_later(self, log_key: str, attempts: int, next_at: datetime, error: str) -> None: ...

    def delivered(self, item: Outgoing) -> bool:
        """Write the item's log entry and remove the key from the queue, in one step (a message
        that arrived is never sent again, not even after a restart). False when a newer message
        had replaced it meanwhile: that one, judged against the log before this delivery, is
        removed too."""

    def give_up(self, log_key: str) -> None: ...


class ActiveIndex:
    """Active alerts by fingerprint (in the order they were first put) and by cabinet. Not
    thread-safe on its own: the state calls it under its lock."""

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
