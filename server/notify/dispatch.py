"""Grouping, timing and de-duplication of notifications, as in Alertmanager. Pure: no I/O.

Every alert is routed to receivers (``Router``) and grouped per receiver and cabinet. A new group
waits ``group_wait`` so that alerts arriving together go out together; after a flush the next one
comes ``group_interval`` later at the earliest. At a flush, each notifier of the receiver is sent
the group when the notification log says it must be:

* nothing was ever sent and something fires;
* an alert fires that the last message did not contain;
* an alert resolved that the last message reported firing (when ``send_resolved``);
* ``repeat_interval`` has passed since the last message and something still fires that is not
  acknowledged.

Silenced and inhibited alerts are left out. The log (``NotificationLog``, durable in SQLite) is
written only after a notifier succeeded, keyed by group and notifier, holding the fingerprint
sets sent and the time: after a restart nothing already sent is sent again, and a failed send is
tried again at the next flush. ``due()`` says what to send, ``sent()`` records it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from server.alerts.model import Alert, AlertState
from server.alerts.routing import Receiver, Router
from server.alerts.status import AlertStatus
from server.alerts.store import LogEntry, NotificationLog
from server.org import Organisation
from server.schoolcal import Calendars

from .base import Notification, Notifier
from .render import render_digest, render_group

__all__ = ["Delivery", "Dispatcher", "GroupTiming"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GroupTiming:
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    send_resolved: bool = True

    def __post_init__(self) -> None:
        for name in ("group_wait", "group_interval", "repeat_interval"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be > 0")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification for one notifier; ``log_key`` and ``entry`` are recorded once it is sent."""

    log_key: str
    notifier: Notifier
    notification: Notification
    entry: LogEntry


@dataclass
class _Group:
    key: str
    receiver: Receiver
    site: str
    cabinet: str
    created_at: datetime
    flushed_at: datetime | None = None
    statuses: list[AlertStatus] = field(default_factory=list)

    def next_flush(self, timing: GroupTiming) -> datetime:
        if self.flushed_at is None:
            return self.created_at + timing.group_wait
        return self.flushed_at + timing.group_interval


class Dispatcher:
    def __init__(self, *, org: Organisation, router: Router, timing: GroupTiming,
                 notifiers: Callable[[Receiver], Sequence[Notifier]], log_store: NotificationLog,
                 calendars: Calendars | None = None, digest_time: time | None = None) -> None:
        self._org = org
        self._router = router
        self._timing = timing
        self._notifiers = notifiers
        self._log = log_store
        self._calendars = calendars
        self._digest_time = digest_time
        self._groups: dict[str, _Group] = {}
        self._told_up_to_date: set[str] = set()
        self._digests_sent: set[str] = set()  # spares a log look-up per school and tick

    def due(self, statuses: Sequence[AlertStatus], now: datetime) -> list[Delivery]:
        self._regroup(statuses, now)
        deliveries: list[Delivery] = []
        for key, group in list(self._groups.items()):
            if now < group.next_flush(self._timing):
                continue
            group.flushed_at = now
            flushed = self._flush(group, now)
            deliveries += flushed
            if not flushed and not any(s.state is AlertState.FIRING for s in group.statuses):
                del self._groups[key]  # all over and all said
        deliveries += self._digests(statuses, now)
        return deliveries

    def sent(self, delivery: Delivery) -> None:
        self._log.log_sent(delivery.log_key, delivery.entry)
        if delivery.notification.kind == "digest":
            self._digests_sent.add(delivery.log_key)

    def _regroup(self, statuses: Sequence[AlertStatus], now: datetime) -> None:
        for existing in self._groups.values():
            existing.statuses = []
        for status in statuses:
            if status.state is AlertState.PENDING:
                continue
            site, cabinet = status.alert.cabinet_key
            for receiver in self._router.receivers(status.alert.labels):
                key = f"{receiver.id}/{site}/{cabinet}"
                group = self._groups.get(key)
                if group is None:
                    if not self._worth_a_group(status, key, receiver):
                        continue
                    group = _Group(key, receiver, site, cabinet, created_at=now)
                    self._groups[key] = group
                group.statuses.append(status)

    def _worth_a_group(self, status: AlertStatus, key: str, receiver: Receiver) -> bool:
        """A group starts with an alert that fires unmuted, or with a resolution of one that was
        sent before (after a restart, the in-memory groups are gone but the log is not)."""
        if status.state is AlertState.FIRING:
            return not status.muted
        return any((entry := self._log.log_entry(f"{key}/{n.name}")) is not None
                   and status.fingerprint in entry.firing for n in self._notifiers(receiver))

    def _flush(self, group: _Group, now: datetime) -> list[Delivery]:
        firing = [s for s in group.statuses if s.state is AlertState.FIRING and not s.muted]
        firing_fps = frozenset(s.fingerprint for s in firing)
        all_firing = {s.fingerprint for s in group.statuses if s.state is AlertState.FIRING}
        resolved = [s.alert for s in group.statuses
                    if s.state is AlertState.RESOLVED and s.fingerprint not in all_firing]
        all_acked = bool(firing) and all(s.ack is not None for s in firing)
        deliveries = []
        for notifier in self._notifiers(group.receiver):
            log_key = f"{group.key}/{notifier.name}"
            entry = self._log.log_entry(log_key)
            newly_resolved = ([a for a in resolved if a.fingerprint in entry.firing]
                              if entry is not None else [])
            if newly_resolved and not self._timing.send_resolved and entry is not None:
                # Not told, but forgotten: should it fire again, that is news again.
                gone = frozenset(a.fingerprint for a in newly_resolved)
                entry = LogEntry(entry.firing - gone, frozenset(), entry.sent_at)
                self._log.log_sent(log_key, entry)
                newly_resolved = []
            if not self._needs_update(entry, firing_fps, bool(newly_resolved), all_acked, now):
                if entry is not None and log_key not in self._told_up_to_date:
                    self._told_up_to_date.add(log_key)  # once per key: the restart test waits on it
                    log.info("notify %s: up to date (last sent %s)", log_key,
                             entry.sent_at.isoformat())
                continue
            self._told_up_to_date.discard(log_key)
            resolved_fps = frozenset(a.fingerprint for a in newly_resolved)
            notification = render_group(
                org=self._org, lang=group.receiver.contacts.lang, key=group.key,
                receiver=group.receiver.name, site=group.site, cabinet=group.cabinet,
                firing=firing, resolved=_unique(newly_resolved), now=now)
            deliveries.append(Delivery(log_key, notifier, notification,
                                       LogEntry(firing_fps, resolved_fps, now)))
        return deliveries

    def _needs_update(self, entry: LogEntry | None, firing: frozenset[str], resolved_since: bool,
                      all_acked: bool, now: datetime) -> bool:
        if entry is None:
            return bool(firing)
        if not firing <= entry.firing or resolved_since:
            return True
        return bool(firing) and not all_acked and now >= entry.sent_at + self._timing.repeat_interval

    def _digests(self, statuses: Sequence[AlertStatus], now: datetime) -> list[Delivery]:
        """Once per school day at ``digest_time``: each school's firing alerts to its contacts."""
        if self._digest_time is None or self._calendars is None:
            return []
        deliveries = []
        for school in self._org.schools:
            if school.contacts.empty:
                continue
            calendar = self._calendars.for_site(school.site)
            local = calendar.local(now)
            if not calendar.is_school_day(local.date()) or local.time() < self._digest_time:
                continue
            mine = [s for s in statuses if s.state is AlertState.FIRING
                    and s.alert.labels.get("site") == school.site]
            if not mine:
                continue  # a daily "all fine" would teach people to ignore the digest
            key = f"digest/{school.site}/{local.date().isoformat()}"
            receiver = Receiver(f"school:{school.site}", school.name, school.contacts)
            for notifier in self._notifiers(receiver):
                log_key = f"{key}/{notifier.name}"
                if log_key in self._digests_sent:
                    continue
                if self._log.log_entry(log_key) is not None:
                    self._digests_sent.add(log_key)
                    continue
                notification = render_digest(org=self._org, lang=school.contacts.lang, key=key,
                                              site=school.site, day=local.date(), statuses=mine,
                                              now=now)
                fps = frozenset(s.fingerprint for s in mine)
                deliveries.append(Delivery(log_key, notifier, notification,
                                           LogEntry(fps, frozenset(), now)))
        return deliveries


def _unique(alerts: Sequence[Alert]) -> list[Alert]:
    """The latest resolved instance per fingerprint."""
    latest: dict[str, Alert] = {}
    for alert in alerts:
        current = latest.get(alert.fingerprint)
        if current is None or alert.active_at > current.active_at:
            latest[alert.fingerprint] = alert
    return list(latest.values())
