"""Every team is told when the collector hears no broker for ``blind_after_s``, once, and once more
when it hears again (server/notify/blind.py), with a fake clock on the real notification log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.alerts.routing import Receiver
from server.alerts.state import StoredState
from server.alerts.store import Outgoing
from server.notify.base import Notification
from server.notify.blind import BlindWatch
from server.notify.dispatch import Delivery
from server.org import Organisation

T0 = datetime(2026, 12, 2, 9, 42, tzinfo=UTC)  # Wed 10:42 in Berlin
AFTER = timedelta(minutes=5)
ORG = Organisation.model_validate({
    "district_team": "kreis-it",
    "teams": [{"id": "kreis-it", "name": "Schul-IT", "contacts": {"lang": "de"}},
              {"id": "nordheim-it", "name": "IT Nordheim", "contacts": {"lang": "en"}}],
    "municipalities": [{"id": "nord", "name": "Nordheim", "team": "nordheim-it"}],
})


class Hook:
    name = "webhook-0"

    def send(self, notification: Notification) -> None:  # sent by the outbox, not here
        raise AssertionError("BlindWatch only makes deliveries")


class Link:
    silent_since: datetime | None = None


def _watch(state: StoredState, link: Link, after: timedelta | None = AFTER) -> BlindWatch:
    hook = Hook()
    return BlindWatch(org=ORG, notifiers=lambda receiver: [hook], log_store=state,
                      queued=state.is_queued, silent_since=lambda: link.silent_since, after=after)


def _by_team(deliveries: list[Delivery]) -> dict[str, Notification]:
    assert len({d.receiver for d in deliveries}) == len(deliveries)
    return {d.receiver: d.notification for d in deliveries}


def _delivered(state: StoredState, deliveries: list[Delivery]) -> None:
    for d in deliveries:  # what the outbox does once a try succeeded
        state.log_sent(d.log_key, d.entry)


def _queued(state: StoredState, deliveries: list[Delivery]) -> None:
    for d in deliveries:  # what Sender.submit does
        state.enqueue(Outgoing(d.log_key, d.receiver, d.notifier.name, "{}", d.entry, T0, T0))


def test_every_team_is_told_once_after_five_minutes_in_its_language() -> None:
    state, link = StoredState.in_memory(), Link()
    watch = _watch(state, link)
    assert watch.due(T0) == []  # hearing
    link.silent_since = T0
    assert watch.due(T0 + AFTER - timedelta(seconds=1)) == []  # a reconnect under way
    told = _by_team(watch.due(T0 + AFTER))
    assert set(told) == {"team:kreis-it", "team:nordheim-it"}
    german, english = told["team:kreis-it"], told["team:nordheim-it"]
    assert german.subject == "[Ladewache] Keine Überwachung: keine Verbindung zum MQTT-Broker"
    assert "Ladewache hört seit Mi 02.12.2026, 10:42 nichts von den Schränken" in german.body
    assert "heard nothing from the cabinets since Wed 2 Dec 2026, 10:42" in english.body
    assert german.payload["status"] == "blind" and german.payload["since"] == T0.isoformat()
    assert watch.due(T0 + AFTER + timedelta(minutes=1)) == []  # once, not at every tick


def test_a_restart_that_finds_it_told_does_not_tell_again() -> None:
    state, link = StoredState.in_memory(), Link()
    link.silent_since = T0
    _delivered(state, _watch(state, link).due(T0 + AFTER))
    assert _watch(state, link).due(T0 + AFTER * 2) == []  # the log says it was sent


def test_hearing_again_is_told_to_whom_the_first_message_went() -> None:
    state, link = StoredState.in_memory(), Link()
    watch = _watch(state, link)
    link.silent_since = T0
    first = watch.due(T0 + AFTER)
    _delivered(state, [d for d in first if d.receiver == "team:kreis-it"])
    # the other team's: given up by the outbox (neither sent nor waiting): no "again" for it
    link.silent_since = None
    back = T0 + timedelta(minutes=17)
    told = _by_team(watch.due(back))
    assert set(told) == {"team:kreis-it"}
    assert told["team:kreis-it"].subject == "[Ladewache] Überwachung läuft wieder"
    assert "17 Minuten lang (ab Mi 02.12.2026, 10:42) wurde kein Schrank überwacht" in \
        told["team:kreis-it"].body
    assert told["team:kreis-it"].payload["status"] == "back"
    assert watch.due(back + timedelta(minutes=1)) == []


def test_a_short_loss_or_a_switched_off_watch_tells_nobody() -> None:
    state, link = StoredState.in_memory(), Link()
    watch = _watch(state, link)
    link.silent_since = T0
    assert watch.due(T0 + timedelta(minutes=4)) == []
    link.silent_since = None  # back before the five minutes: no "back" either
    assert watch.due(T0 + timedelta(minutes=4, seconds=30)) == []
    link.silent_since = T0
    assert _watch(state, link, after=None).due(T0 + timedelta(days=1)) == []


def test_a_second_spell_is_told_again() -> None:
    state, link = StoredState.in_memory(), Link()
    watch = _watch(state, link)
    link.silent_since = T0
    _delivered(state, watch.due(T0 + AFTER))
    link.silent_since = None
    _delivered(state, watch.due(T0 + AFTER * 2))
    link.silent_since = T0 + timedelta(hours=2)
    again = _by_team(watch.due(T0 + timedelta(hours=2) + AFTER))
    assert set(again) == {"team:kreis-it", "team:nordheim-it"}
    assert "seit Mi 02.12.2026, 12:42" in again["team:kreis-it"].body


def test_the_receivers_are_the_teams() -> None:
    # Receiver ids the outbox finds its notifier by after a restart (app.notifier_named)
    state, link = StoredState.in_memory(), Link()
    link.silent_since = T0
    receivers = {d.receiver for d in _watch(state, link).due(T0 + AFTER)}
    assert receivers == {Receiver(f"team:{t.id}", t.name, t.contacts).id for t in ORG.teams}


def test_a_first_message_still_waiting_in_the_outbox_gets_its_sequel() -> None:
    state, link = StoredState.in_memory(), Link()
    watch = _watch(state, link)
    link.silent_since = T0
    _queued(state, watch.due(T0 + AFTER))  # the network was down too: both still waiting
    link.silent_since = None
    assert set(_by_team(watch.due(T0 + AFTER * 2))) == {"team:kreis-it", "team:nordheim-it"}
