"""Every team is told when the collector hears no broker for ``blind_after_s``, once, and once more
when it hears again; with several brokers, the teams of the cabinets out of earshot by one that is
down, each of its own (server/notify/blind.py). A fake clock on the real notification log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.alerts.routing import Receiver
from server.alerts.state import StoredState
from server.alerts.store import Outgoing
from server.brokers import Unheard
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
    "municipalities": [{"id": "nord", "name": "Nordheim", "team": "nordheim-it"},
                       {"id": "sued", "name": "Südheim"}],
    "schools": [{"site": "gs-nord", "name": "GS Nordheim", "municipality": "nord"},
                {"site": "gs-sued", "name": "GS Südheim", "municipality": "sued"}],
    "cabinets": [{"school": "gs-nord", "id": "k1", "name": "Raum 12"}],
})


class Hook:
    name = "webhook-0"

    def send(self, notification: Notification) -> None:  # sent by the outbox, not here
        raise AssertionError("BlindWatch only makes deliveries")


class Link:
    def __init__(self) -> None:
        self.silent_since: datetime | None = None
        self.unheard: list[Unheard] = []


def _watch(state: StoredState, link: Link, after: timedelta | None = AFTER) -> BlindWatch:
    hook = Hook()
    return BlindWatch(org=ORG, notifiers=lambda receiver: [hook], log_store=state,
                      queued=state.is_queued, silent_since=lambda: link.silent_since,
                      unheard=lambda: link.unheard, after=after)


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


BROKER_B = "broker2.example:8883"
OUT_OF_EARSHOT = [("gs-nord", "k1"), ("gs-nord", "k2"), ("gs-sued", "k9")]


def test_the_teams_of_cabinets_out_of_earshot_are_told_each_of_its_own() -> None:
    state, link = StoredState.in_memory(), Link()
    watch = _watch(state, link)
    link.unheard = [Unheard(BROKER_B, T0, OUT_OF_EARSHOT)]
    assert watch.due(T0 + AFTER - timedelta(seconds=1)) == []  # they may still be moving
    told = _by_team(watch.due(T0 + AFTER))
    assert set(told) == {"team:kreis-it", "team:nordheim-it"}  # Südheim has the district's team
    english, german = told["team:nordheim-it"], told["team:kreis-it"]
    assert english.subject == ("[Ladewache] 2 cabinets not monitored: MQTT broker "
                               "broker2.example:8883 unreachable")
    assert "- Raum 12, GS Nordheim\n- k2, GS Nordheim\n" in english.body  # names, not ids
    assert "GS Südheim" not in english.body  # another team's cabinet
    assert german.subject.startswith("[Ladewache] 1 Schrank ohne Überwachung")
    assert "- k9, GS Südheim" in german.body and "Nordheim" not in german.body
    assert "seit Mi 02.12.2026, 10:42 den MQTT-Broker broker2.example:8883 nicht" in german.body
    assert english.payload["kind"] == "unheard" and english.payload["broker"] == BROKER_B
    assert watch.due(T0 + AFTER + timedelta(minutes=1)) == []  # once
    link.unheard = []  # connected again; the first messages were neither sent nor waiting
    assert watch.due(T0 + timedelta(minutes=20)) == []


def test_back_is_told_to_whom_the_first_went_and_a_moved_fleet_tells_nobody() -> None:
    state, link = StoredState.in_memory(), Link()
    watch = _watch(state, link)
    link.unheard = [Unheard(BROKER_B, T0, [])]  # down, but every cabinet heard through the other
    assert watch.due(T0 + AFTER * 3) == []
    link.unheard = [Unheard(BROKER_B, T0, [("gs-nord", "k1")])]
    _delivered(state, watch.due(T0 + AFTER * 3))
    link.unheard = []
    back = _by_team(watch.due(T0 + timedelta(minutes=20)))
    assert set(back) == {"team:nordheim-it"}
    assert back["team:nordheim-it"].subject == \
        "[Ladewache] MQTT broker broker2.example:8883 reachable again"
    assert "For 20 minutes (from Wed 2 Dec 2026, 10:42) 1 cabinet went unmonitored" in \
        back["team:nordheim-it"].body
    assert watch.due(T0 + timedelta(minutes=21)) == []


def test_while_blind_only_the_blind_message_goes_and_no_early_back() -> None:
    state, link = StoredState.in_memory(), Link()
    watch = _watch(state, link)
    link.unheard = [Unheard(BROKER_B, T0, [("gs-nord", "k1")])]
    _delivered(state, watch.due(T0 + AFTER))
    link.silent_since = T0 + AFTER  # the other broker lost too: blind
    blind = watch.due(T0 + AFTER * 2)
    assert {d.notification.payload["kind"] for d in blind} == {"blind"}
    _delivered(state, blind)
    link.silent_since, link.unheard = None, []  # both back
    kinds = sorted((d.notification.payload["kind"], d.notification.payload["status"])
                   for d in watch.due(T0 + AFTER * 3))
    assert kinds == [("blind", "back"), ("blind", "back"), ("unheard", "back")]
