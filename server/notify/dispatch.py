"""Grouping, timing and de-duplication of notifications, as in Alertmanager, on the school
calendar. Pure: no I/O.

Every alert is routed to receivers (``Router``) and grouped per receiver and cabinet. A new group
waits ``group_wait`` so that alerts arriving together go out together; after a flush the next one
comes ``group_interval`` later at the earliest. A *safety* alert (``server.alerts.cadence``) that
starts firing and was never sent flushes its group at once. At a flush, each notifier of the
receiver is sent a message when the notification log says it must be:

* an *update*: an alert fires that the last message did not tell (listed in full), or one it
  told resolved (when ``send_resolved``); alerts told before and still firing are one count line;
* a *reminder*: nothing changed, ``repeat_interval`` has passed since the last message and
  something still fires that is not acknowledged; one short line per open alert.

*School-day* alerts (an iPad not returned, not charged, not charging) are carried only while the
site's ``SchoolDayGate`` is open: on a school day, from the start of lessons into the early
evening. What fires outside waits for the next school day and is told then only if it still
fires; a message on a day off carries only the group's other alerts. Silenced and inhibited alerts
are left out. The log (``NotificationLog``, durable in SQLite) is written only after a notifier
succeeded, keyed by group and notifier, holding the fingerprints told as firing (including told
school-day alerts that wait) and the time: after a restart nothing already sent is sent again, and
a failed send is tried again at the next flush. ``due()`` says what to send, ``sent()`` records it.

The collector hands what is due to ``server.notify.sender``, which delivers it from the outbox
(retries with back-off there, the log written with the delivery) and then calls ``logged()``. A
digest waiting in the outbox is not made again (``queued``); a group's newer message replaces the
one waiting for the same notifier.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import Enum

from server.alerts.cadence import Cadence, SchoolDayGate, cadence_of
from server.alerts.model import Alert, AlertState
from server.alerts.routing import Receiver, Router
from server.alerts.status import AlertStatus
from server.alerts.store import LogEntry, NotificationLog
from server.org import Organisation, SchoolConfig
from server.presence import UnconfirmedSlot
from server.schoolcal import Calendars

from .base import Notification, Notifier
from .render import render_digest, render_group, render_reminder

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
    receiver: str  # Receiver.id: with the notifier's name, finds the notifier after a restart


def _instance(status: AlertStatus) -> tuple[str, datetime]:
    """One firing of an alert: a recurrence has the same fingerprint but a later start."""
    return status.fingerprint, status.alert.starts_at


@dataclass
class _Group:
    key: str
    receiver: Receiver
    site: str
    cabinet: str
    created_at: datetime
    flushed_at: datetime | None = None
    statuses: list[AlertStatus] = field(default_factory=list)
    # Safety alert instances that need no flush of their own: they were in the group at its last
    # flush, or the log showed them sent to every notifier.
    known: set[tuple[str, datetime]] = field(default_factory=set)
    rejudge: bool = False  # flush at the next due(): a message was judged against a stale log

    def next_flush(self, timing: GroupTiming) -> datetime:
        if self.flushed_at is None:
            return self.created_at + timing.group_wait
        return self.flushed_at + timing.group_interval

    def unmuted_firing(self) -> list[AlertStatus]:
        return [s for s in self.statuses if s.state is AlertState.FIRING and not s.muted]


@dataclass(frozen=True, slots=True)
class _Sayable:
    """A group's alerts at one flush, split by whether the calendar lets them be told now."""

    firing: list[AlertStatus]  # unmuted, may be told now
    resolved: list[Alert]  # no longer firing, may be told now (latest instance per fingerprint)
    waiting: list[Alert]  # school-day alerts, firing unmuted or resolved, held back by the gate


@dataclass(frozen=True, slots=True)
class _News:
    """What one notifier has not heard yet, judged from its log entry."""

    new: list[AlertStatus]
    still_open: list[AlertStatus]
    resolved: list[Alert]


class _Message(Enum):
    UPDATE = "update"
    REMINDER = "reminder"


def _told(alert: Alert, entry: LogEntry | None) -> bool:
    """Whether this firing of the alert was told as firing: its fingerprint is in the log and it
    began before that message (a recurrence after a resolution is news again)."""
    return entry is not None and alert.fingerprint in entry.firing and alert.starts_at <= entry.sent_at


class Dispatcher:
    def __init__(self, *, org: Organisation, router: Router, timing: GroupTiming,
                 notifiers: Callable[[Receiver], Sequence[Notifier]], log_store: NotificationLog,
                 calendars: Calendars | None = None, digest_time: time | None = None,
                 unconfirmed: Callable[[str], Sequence[UnconfirmedSlot]] | None = None,
                 queued: Callable[[str], bool] | None = None, base_url: str | None = None) -> None:
        """Without ``calendars`` there are no school days: nothing is held back, no digest.
        ``queued(log_key)``: whether a message for that key waits in the outbox. ``base_url``:
        where people open the dashboard ([http] public_url): messages link to it."""
        self._org = org
        self._base_url = base_url
        self._router = router
        self._timing = timing
        self._notifiers = notifiers
        self._log = log_store
        self._calendars = calendars
        self._gate = SchoolDayGate(org, calendars) if calendars is not None else None
        self._digest_time = digest_time
        self._unconfirmed = unconfirmed
        self._queued = queued
        self._groups: dict[str, _Group] = {}
        self._said: dict[str, set[str]] = {}  # log key -> what was logged since its last send
        self._digests_sent: set[str] = set()  # spares a log look-up per school and tick
        # site -> the school day on which it had no unconfirmed slot when asked: asking goes over
        # the fleet, so a quiet school is asked once a day, not at every tick.
        self._none_unconfirmed_on: dict[str, date] = {}

    def reset(self) -> None:
        """Forget the groups and what was said: judge everything against the log afresh, as
        after a restart (a collector that starts to lead, ``server/leader.py``)."""
        self._groups.clear()
        self._said.clear()
        self._digests_sent.clear()
        self._none_unconfirmed_on.clear()

    def due(self, statuses: Sequence[AlertStatus], now: datetime) -> list[Delivery]:
        self._regroup(statuses, now)
        deliveries: list[Delivery] = []
        for key, group in list(self._groups.items()):
            if now < group.next_flush(self._timing) and not group.rejudge \
                    and not self._urgent(group):
                continue
            group.flushed_at, group.rejudge = now, False
            group.known = {_instance(s) for s in group.unmuted_firing()}
            flushed, waiting = self._flush(group, now)
            deliveries += flushed
            if not flushed and not waiting and not any(
                    s.state is AlertState.FIRING for s in group.statuses):
                del self._groups[key]  # all over and all said
        deliveries += self._digests(statuses, now)
        return deliveries

    def sent(self, delivery: Delivery) -> None:
        self._log.log_sent(delivery.log_key, delivery.entry)
        self.logged(delivery.log_key, delivery.notification)

    def logged(self, log_key: str, notification: Notification) -> None:
        """The log holds what ``notification`` told on ``log_key`` (written by ``sent()``, or by
        the outbox together with the delivery)."""
        self._said.pop(log_key, None)
        if notification.kind == "digest":
            self._digests_sent.add(log_key)

    def rejudge(self, group_key: str) -> None:
        """A message was delivered while a newer one for the same notifier waited; that one was
        judged against the log before this delivery and is dropped: judge the group again at the
        next ``due()`` rather than tell the same news twice."""
        group = self._groups.get(group_key)
        if group is not None:
            group.rejudge = True

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

    def _urgent(self, group: _Group) -> bool:
        """A safety alert started firing that some notifier was never sent: the group goes out
        now, not after ``group_wait``/``group_interval`` (a door open at night cannot wait)."""
        fresh = [s for s in group.unmuted_firing()
                 if cadence_of(s.alert.name) is Cadence.SAFETY and _instance(s) not in group.known]
        if not fresh:
            return False
        entries = [self._log.log_entry(f"{group.key}/{n.name}")
                   for n in self._notifiers(group.receiver)]
        for status in fresh:
            if not all(_told(status.alert, entry) for entry in entries):
                return True
            group.known.add(_instance(status))  # told before a restart: no hurry, no look-up again
        return False

    def _sayable(self, group: _Group, now: datetime) -> _Sayable:
        firing = group.unmuted_firing()
        all_firing = {s.fingerprint for s in group.statuses if s.state is AlertState.FIRING}
        resolved = _unique([s.alert for s in group.statuses
                            if s.state is AlertState.RESOLVED and s.fingerprint not in all_firing])
        if self._gate is None or self._gate.is_open(group.site, now):
            return _Sayable(firing, resolved, [])
        school_day = [s for s in firing if cadence_of(s.alert.name) is Cadence.SCHOOL_DAY]
        return _Sayable(
            [s for s in firing if cadence_of(s.alert.name) is not Cadence.SCHOOL_DAY],
            [a for a in resolved if cadence_of(a.name) is not Cadence.SCHOOL_DAY],
            [*(s.alert for s in school_day),
             *(a for a in resolved if cadence_of(a.name) is Cadence.SCHOOL_DAY)])

    def _flush(self, group: _Group, now: datetime) -> tuple[list[Delivery], bool]:
        """The messages due for the group's notifiers, and whether alerts wait for a school day
        (the group must then outlive them)."""
        sayable = self._sayable(group, now)
        deliveries = []
        for notifier in self._notifiers(group.receiver):
            log_key = f"{group.key}/{notifier.name}"
            entry = self._log.log_entry(log_key)
            if not self._timing.send_resolved:
                entry = self._forget_resolved(log_key, entry, sayable)
            news = _news(entry, sayable)
            message = self._message(entry, news, now)
            if message is None:
                self._say_why_not(log_key, entry, sayable)
                continue
            notification = self._render(group, message, news, now)
            deliveries.append(Delivery(log_key, notifier, notification,
                                       _next_entry(entry, sayable, news, now), group.receiver.id))
        return deliveries, bool(sayable.waiting)

    def _forget_resolved(self, log_key: str, entry: LogEntry | None,
                         sayable: _Sayable) -> LogEntry | None:
        """With ``send_resolved`` off a resolution is not told, but forgotten: should the alert
        fire again, that is news again."""
        if entry is None:
            return None
        gone = frozenset(a.fingerprint for a in [*sayable.resolved, *sayable.waiting]
                         if a.ends_at is not None and _told(a, entry))
        if not gone:
            return entry
        entry = LogEntry(entry.firing - gone, frozenset(), entry.sent_at)
        self._log.log_sent(log_key, entry)
        return entry

    def _message(self, entry: LogEntry | None, news: _News, now: datetime) -> _Message | None:
        if news.new or news.resolved:  # with send_resolved off, no resolution is in the log
            return _Message.UPDATE
        if entry is None or not news.still_open or all(s.ack is not None for s in news.still_open):
            return None
        if now >= entry.sent_at + self._timing.repeat_interval:
            return _Message.REMINDER
        return None

    def _render(self, group: _Group, message: _Message, news: _News,
                now: datetime) -> Notification:
        lang, receiver = group.receiver.contacts.lang, group.receiver.name
        if message is _Message.REMINDER:
            return render_reminder(org=self._org, lang=lang, key=group.key, receiver=receiver,
                                   site=group.site, cabinet=group.cabinet,
                                   still_open=news.still_open, now=now, base_url=self._base_url)
        return render_group(org=self._org, lang=lang, key=group.key, receiver=receiver,
                            site=group.site, cabinet=group.cabinet, firing=news.new,
                            resolved=news.resolved, still_open=news.still_open, now=now,
                            base_url=self._base_url)

    def _say_why_not(self, log_key: str, entry: LogEntry | None, sayable: _Sayable) -> None:
        """Log once per key and reason (the restart test waits for "up to date")."""
        said = self._said.setdefault(log_key, set())
        untold = [a for a in sayable.waiting if a.ends_at is None and not _told(a, entry)]
        if untold and "waiting" not in said:
            said.add("waiting")
            log.info("notify %s: %d school-day alert(s) wait for the next school day", log_key,
                     len(untold))
        elif entry is not None and "up to date" not in said:
            said.add("up to date")
            log.info("notify %s: up to date (last sent %s)", log_key, entry.sent_at.isoformat())

    def _digests(self, statuses: Sequence[AlertStatus], now: datetime) -> list[Delivery]:
        """Once per school day from ``digest_time``: each school's firing alerts and unconfirmed
        slots to its contacts."""
        if self._digest_time is None or self._calendars is None:
            return []
        deliveries = []
        for school in self._org.schools:
            if school.contacts.empty:
                continue
            calendar = self._calendars.for_site(school.site)
            local = calendar.local(now)
            if calendar.is_school_day(local.date()) and local.time() >= self._digest_time:
                deliveries += self._school_digest(school, local.date(), statuses, now)
        return deliveries

    def _school_digest(self, school: SchoolConfig, day: date, statuses: Sequence[AlertStatus],
                       now: datetime) -> list[Delivery]:
        mine = [s for s in statuses if s.state is AlertState.FIRING
                and s.alert.labels.get("site") == school.site]
        if not mine and not self._may_have_unconfirmed(school.site, day):
            return []  # the cheap answer at every tick of a quiet school's day
        key = f"digest/{school.site}/{day.isoformat()}"
        receiver = Receiver(f"school:{school.site}", school.name, school.contacts)
        pending = [n for n in self._notifiers(receiver) if not self._digest_done(f"{key}/{n.name}")]
        if not pending:
            return []
        unconfirmed = self._unconfirmed_slots(school.site, day)
        if not mine and not unconfirmed:
            return []  # a daily "all fine" would teach people to ignore the digest
        notification = render_digest(org=self._org, lang=school.contacts.lang, key=key,
                                     site=school.site, day=day, statuses=mine, now=now,
                                     unconfirmed=unconfirmed, base_url=self._base_url)
        entry = LogEntry(frozenset(s.fingerprint for s in mine), frozenset(), now)
        return [Delivery(f"{key}/{n.name}", n, notification, entry, receiver.id) for n in pending]

    def _may_have_unconfirmed(self, site: str, day: date) -> bool:
        return self._unconfirmed is not None and self._none_unconfirmed_on.get(site) != day

    def _unconfirmed_slots(self, site: str, day: date) -> list[UnconfirmedSlot]:
        """The site's unconfirmed slots; a site that had none is not asked again that day (a
        slot unconfirmed later is in the next morning's digest)."""
        if self._unconfirmed is None or not self._may_have_unconfirmed(site, day):
            return []
        slots = list(self._unconfirmed(site))
        if not slots:
            self._none_unconfirmed_on[site] = day
        return slots

    def _digest_done(self, log_key: str) -> bool:
        """Sent (logged), or waiting in the outbox: not made again."""
        if log_key in self._digests_sent:
            return True
        if self._log.log_entry(log_key) is not None:
            self._digests_sent.add(log_key)
            return True
        return self._queued is not None and self._queued(log_key)


def _news(entry: LogEntry | None, sayable: _Sayable) -> _News:
    return _News(new=[s for s in sayable.firing if not _told(s.alert, entry)],
                 still_open=[s for s in sayable.firing if _told(s.alert, entry)],
                 resolved=[a for a in sayable.resolved if _told(a, entry)])


def _next_entry(entry: LogEntry | None, sayable: _Sayable, news: _News,
                now: datetime) -> LogEntry:
    """The log after this message: what it told as firing, plus the told school-day alerts that
    wait (a day off does not make them news again on the next school day)."""
    carried = {a.fingerprint for a in sayable.waiting if _told(a, entry)}
    firing = {s.fingerprint for s in sayable.firing} | carried
    return LogEntry(frozenset(firing), frozenset(a.fingerprint for a in news.resolved), now)


def _unique(alerts: Sequence[Alert]) -> list[Alert]:
    """The latest resolved instance per fingerprint."""
    latest: dict[str, Alert] = {}
    for alert in alerts:
        current = latest.get(alert.fingerprint)
        if current is None or alert.active_at > current.active_at:
            latest[alert.fingerprint] = alert
    return list(latest.values())
