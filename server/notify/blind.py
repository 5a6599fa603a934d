"""Telling the teams when the collector cannot hear cabinets: then it judges them not, and no
alert about them can come.

* *Blind*: no broker delivers (the broker down, the collector's network cut). While that lasts for
  ``[notify] blind_after_s`` (300 s; 0 is off), every team is told once ("Ladewache hört seit …
  nichts von den Schränken"), and once more when it hears again ("… hört wieder; … ohne
  Überwachung"), to those whose first message was sent or still waits in the outbox. Every team,
  not only the district's: the municipalities with their own support are as blind.
* *Out of earshot*: with several brokers, one connection is down and some cabinets were last heard
  through it (server/brokers.py): the alert engine leaves them as they are. Whether that broker is
  down for everyone (its agents should have moved, these did not: switched off, or no second
  broker in their config) or only the collector's link to it is cut (they talk on, unheard), the
  collector cannot tell. After ``blind_after_s`` the teams of those cabinets' schools are told,
  each of its own cabinets by name, and again when the connection is back. Not while blind (that
  message says more), and not for a broker whose cabinets all moved: nothing waits then.

Once, durably, like the digest: each message goes through the outbox (retries with back-off)
under the log key ``blind/<since>/<team>/<notifier>`` (``since``: when it stopped hearing, UTC)
or ``unheard/<since>/<broker>/<team>/<notifier>``, and the same with ``/back`` before the team.
A collector restarted meanwhile counts from its start, so it tells again, with the later time; a
new leader likewise from its own links. Only the leader asks (``app.notify_once``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from server import formatting
from server.alerts.routing import Receiver
from server.alerts.store import LogEntry, NotificationLog
from server.brokers import Unheard
from server.i18n import Language, cabinet_count, text
from server.org import Organisation

from .base import Notification, Notifier
from .dispatch import Delivery
from .render import PAYLOAD_VERSION, cabinet_title

__all__ = ["BlindWatch", "render_blind", "render_unheard"]

KIND: Final = "blind"
UNHEARD: Final = "unheard"


@dataclass(frozen=True, slots=True)
class _Spell:
    """One stretch of not hearing that the teams are told of: blind (``broker`` None, every
    team) or a broker's cabinets out of earshot (the teams of their schools, each its own)."""

    key: str  # blind/<since> or unheard/<since>/<broker>
    since: datetime
    broker: str | None = None
    receivers: tuple[Receiver, ...] = ()
    titles: dict[str, list[str]] = field(default_factory=dict)  # receiver id -> cabinet names


class BlindWatch:
    def __init__(self, *, org: Organisation, notifiers: Callable[[Receiver], Sequence[Notifier]],
                 log_store: NotificationLog, silent_since: Callable[[], datetime | None],
                 after: timedelta | None, queued: Callable[[str], bool] | None = None,
                 unheard: Callable[[], list[Unheard]] = list) -> None:
        """``silent_since``: since when no broker delivers (``MqttStats.silent_since``);
        ``unheard``: the connections down and their cabinets (``BrokerLinks.unheard``);
        ``after``: how long either must last (None: off); ``queued(log_key)``: whether a message
        for that key waits in the outbox."""
        self._org = org
        self._notifiers = notifiers
        self._log = log_store
        self._silent_since = silent_since
        self._unheard = unheard
        self._after = after
        self._queued = queued
        self._told: dict[str, _Spell] = {}  # the spells this process told of, by key
        self._done: set[str] = set()  # log keys queued or sent

    def due(self, now: datetime) -> list[Delivery]:
        if self._after is None:
            return []
        since = self._silent_since()
        if since is not None:
            spells = {_key(since): _Spell(_key(since), since, None, tuple(self._teams()))}
        else:
            spells = {spell.key: spell for spell in map(self._spell, self._unheard()) if spell}
        deliveries = []
        for key, spell in spells.items():
            if now - spell.since >= self._after:
                self._told[key] = spell
                deliveries += self._deliveries(spell, spell.key, None, now)
        for key in [k for k in self._told if k not in spells]:
            if since is not None and key.startswith(UNHEARD):
                continue  # blind now: whether these cabinets are heard again is not known yet
            spell = self._told.pop(key)
            # told: sent, or still waiting in the outbox (it goes first); not one the outbox
            # gave up
            told = {log_key for log_key in self._log_keys(spell)
                    if self._logged_or_queued(log_key)}
            deliveries += [d for d in self._deliveries(spell, f"{key}/back", now, now)
                           if _key_of_first(d.log_key) in told]
        return deliveries

    def _spell(self, unheard: Unheard) -> _Spell | None:
        """The teams of the cabinets out of earshot by one connection, each with its own."""
        receivers: dict[str, Receiver] = {}
        titles: dict[str, list[str]] = {}
        for site, cabinet in unheard.cabinets:
            team = self._org.team_for(site)
            if team is None:
                continue  # shown, not sent, as its alerts (server/alerts/routing.py)
            receiver = receivers.setdefault(team.id, Receiver.of_team(team))
            titles.setdefault(receiver.id, []).append(cabinet_title(self._org, site, cabinet))
        if not receivers:
            return None
        key = f"{UNHEARD}/{_stamp(unheard.since)}/{unheard.broker}"
        return _Spell(key, unheard.since, unheard.broker, tuple(receivers.values()),
                      {rid: sorted(names) for rid, names in titles.items()})

    def _log_keys(self, spell: _Spell) -> list[str]:
        return [_log_key(spell.key, receiver, notifier) for receiver in spell.receivers
                for notifier in self._notifiers(receiver)]

    def _logged_or_queued(self, log_key: str) -> bool:
        return self._log.log_entry(log_key) is not None or (
            self._queued is not None and self._queued(log_key))

    def _teams(self) -> list[Receiver]:
        return [Receiver.of_team(team) for team in self._org.teams]

    def _deliveries(self, spell: _Spell, key: str, back: datetime | None,
                    now: datetime) -> list[Delivery]:
        deliveries = []
        for receiver in spell.receivers:
            notification: Notification | None = None
            for notifier in self._notifiers(receiver):
                log_key = _log_key(key, receiver, notifier)
                if log_key in self._done:
                    continue
                self._done.add(log_key)
                if self._logged_or_queued(log_key):
                    continue
                if notification is None:
                    lang = receiver.contacts.lang
                    notification = (
                        render_blind(org=self._org, lang=lang, key=key, since=spell.since,
                                     back=back, now=now) if spell.broker is None else
                        render_unheard(org=self._org, lang=lang, key=key, since=spell.since,
                                       back=back, now=now, broker=spell.broker,
                                       cabinets=spell.titles.get(receiver.id, [])))
                deliveries.append(Delivery(log_key, notifier, notification,
                                           LogEntry(frozenset(), frozenset(), now), receiver.id))
        return deliveries


def _stamp(since: datetime) -> str:
    return f"{since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _key(since: datetime) -> str:
    return f"{KIND}/{_stamp(since)}"


def _log_key(key: str, receiver: Receiver, notifier: Notifier) -> str:
    return f"{key}/{receiver.id}/{notifier.name}"


def _key_of_first(back_log_key: str) -> str:
    """``…/back/<team>/<notifier>`` → ``…/<team>/<notifier>``."""
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


def render_unheard(*, org: Organisation, lang: Language, key: str, since: datetime,
                   back: datetime | None, now: datetime, broker: str,
                   cabinets: list[str]) -> Notification:
    """The message that ``cabinets`` (their names) are out of earshot since ``since``, their
    broker connection down (``back`` None), or that it is back since ``back``."""
    at = formatting.date_time(since, org.zone, lang)
    count = cabinet_count(len(cabinets), lang)
    if back is None:
        subject = text("subject.unheard", lang, count=count, broker=broker)
        body = text("body.unheard", lang, since=at, broker=broker,
                    cabinets="\n".join(f"- {name}" for name in cabinets))
    else:
        subject = text("subject.unheard_back", lang, broker=broker)
        body = text("body.unheard_back", lang, since=at, broker=broker, count=count,
                    back=formatting.date_time(back, org.zone, lang),
                    duration=formatting.span(since, back, lang))
    payload: dict[str, Any] = {
        "version": PAYLOAD_VERSION, "kind": UNHEARD, "key": key,
        "status": "unheard" if back is None else "back", "broker": broker,
        "cabinets": cabinets,
        "since": since.astimezone(UTC).isoformat(),
        "back": back.astimezone(UTC).isoformat() if back is not None else None,
        "sent_at": now.astimezone(UTC).isoformat(),
    }
    return Notification(UNHEARD, key, subject, body, payload)
