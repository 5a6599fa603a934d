"""Telling every team when the collector hears no broker: then it judges no cabinet, and no alert
about a cabinet can come (the broker down, the collector's network cut).

While no broker has delivered to the leading collector for ``[notify] blind_after_s`` (300 s; 0 is
off), every team is told once ("Ladewache hört seit … nichts von den Schränken"), and once more
when it hears again ("… hört wieder; … ohne Überwachung"), to those whose first message was
sent or still waits in the outbox. Every
team, not only the district's: the municipalities with their own support are as blind.

Once, durably, like the digest: each message goes through the outbox (retries with back-off)
under the log key ``blind/<since>/<team>/<notifier>`` (``since``: when it stopped hearing, UTC)
and ``blind/<since>/back/<team>/<notifier>``. A collector restarted while blind counts from its
start, so it tells again, with the later time; a new leader likewise from its own links. Only the
leader asks (``app.notify_once``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from server import formatting
from server.alerts.routing import Receiver
from server.alerts.store import LogEntry, NotificationLog
from server.i18n import Language, text
from server.org import Organisation

from .base import Notification, Notifier
from .dispatch import Delivery
from .render import PAYLOAD_VERSION

__all__ = ["BlindWatch", "render_blind"]

KIND: Final = "blind"


class BlindWatch:
    def __init__(self, *, org: Organisation, notifiers: Callable[[Receiver], Sequence[Notifier]],
                 log_store: NotificationLog, silent_since: Callable[[], datetime | None],
                 after: timedelta | None, queued: Callable[[str], bool] | None = None) -> None:
        """``silent_since``: since when no broker delivers (``MqttStats.silent_since``);
        ``after``: how long that must last (None: off); ``queued(log_key)``: whether a message
        for that key waits in the outbox."""
        self._org = org
        self._notifiers = notifiers
        self._log = log_store
        self._silent_since = silent_since
        self._after = after
        self._queued = queued
        self._told: datetime | None = None  # the start of the blind spell this process told of
        self._done: set[str] = set()  # log keys queued or sent

    def due(self, now: datetime) -> list[Delivery]:
        if self._after is None:
            return []
        since = self._silent_since()
        if since is not None:
            if now - since < self._after:
                return []
            self._told = since
            return self._deliveries(_key(since), since, None, now)
        if self._told is None:
            return []
        started, self._told = self._told, None
        # told: sent, or still waiting in the outbox (it goes first); not one the outbox gave up
        told = {log_key for log_key in self._log_keys(_key(started))
                if self._logged_or_queued(log_key)}
        return [d for d in self._deliveries(f"{_key(started)}/back", started, now, now)
                if _key_of_first(d.log_key) in told]

    def _log_keys(self, key: str) -> list[str]:
        return [_log_key(key, receiver, notifier) for receiver in self._receivers()
                for notifier in self._notifiers(receiver)]

    def _logged_or_queued(self, log_key: str) -> bool:
        return self._log.log_entry(log_key) is not None or (
            self._queued is not None and self._queued(log_key))

    def _receivers(self) -> list[Receiver]:
        return [Receiver(f"team:{team.id}", team.name, team.contacts) for team in self._org.teams]

    def _deliveries(self, key: str, since: datetime, back: datetime | None,
                    now: datetime) -> list[Delivery]:
        deliveries = []
        for receiver in self._receivers():
            notification: Notification | None = None
            for notifier in self._notifiers(receiver):
                log_key = _log_key(key, receiver, notifier)
                if log_key in self._done:
                    continue
                self._done.add(log_key)
                if self._logged_or_queued(log_key):
                    continue
                if notification is None:
                    notification = render_blind(org=self._org, lang=receiver.contacts.lang,
                                                key=key, since=since, back=back, now=now)
                deliveries.append(Delivery(log_key, notifier, notification,
                                           LogEntry(frozenset(), frozenset(), now), receiver.id))
        return deliveries


def _key(since: datetime) -> str:
    return f"{KIND}/{since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _log_key(key: str, receiver: Receiver, notifier: Notifier) -> str:
    return f"{key}/{receiver.id}/{notifier.name}"


def _key_of_first(back_log_key: str) -> str:
    """``blind/<since>/back/<team>/<notifier>`` → ``blind/<since>/<team>/<notifier>``."""
    return back_log_key.replace("/back/", "/", 1)


def render_blind(*, org: Organisation, lang: Language, key: str, since: datetime,
                 back: datetime | None, now: datetime) -> Notification:
    """The message that the collector hears nothing since ``since`` (``back`` None), or that it
    hears again since ``back``."""
    at = formatting.date_time(since, org.zone, lang)
    if back is None:
        subject = text("subject.blind", lang)
        body = text("body.blind", lang, since=at)
    else:
        subject = text("subject.blind_back", lang)
        body = text("body.blind_back", lang, since=at,
                    back=formatting.date_time(back, org.zone, lang),
                    duration=formatting.span(since, back, lang))
    payload: dict[str, Any] = {
        "version": PAYLOAD_VERSION, "kind": KIND, "key": key,
        "status": "blind" if back is None else "back",
        "since": since.astimezone(UTC).isoformat(),
        "back": back.astimezone(UTC).isoformat() if back is not None else None,
        "sent_at": now.astimezone(UTC).isoformat(),
    }
    return Notification(KIND, key, subject, body, payload)
