"""Delivery without a network: the outbox contract (in memory and in SQLite), the sender's
back-off, give-up, timeout and hand-back to the dispatcher, and URL redaction (logs, errors,
check-config). Fake notifiers and a fake clock; a try that must time out gets 50 ms, and waits are
on events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from server.alerts.routing import Router
from server.alerts.state import StoredState
from server.alerts.status import alert_statuses
from server.alerts.store import LogEntry, Outgoing
from server.cli import main
from server.config import load_server_settings
from server.notify import Notification, NotifyError
from server.notify.base import Notifier
from server.notify.dispatch import Delivery, Dispatcher, GroupTiming
from server.notify.sender import Sender, decode, delivery_id, encode
from server.notify.settings import DeliverySettings
from server.redact import HIDDEN, RedactingFilter, redact_text, redact_url
from server.schoolcal import Calendars
from tests.support.store import new_store, store_at
from tests.unit.test_notify_calendar import BERLIN, ORG, SHIPPED, alert, at

T0 = datetime(2026, 11, 17, 21, 0, tzinfo=UTC)
KEY = "team:kreis-it/gs-park/k1/fake"
NOTE = Notification("alerts", "team:kreis-it/gs-park/k1", "[Ladewache] 1 Alarm", "Tür offen",
                    {"version": 2, "alerts": []})
ENTRY = LogEntry(frozenset({"fp-1"}), frozenset(), T0)
TOKEN_URL = "https://hooks.example/services/T000/B000/SECRETTOKEN?token=abc"


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Fake:
    """A notifier that answers from a script (None: success), after ``gate`` opens if given."""

    answers: list[NotifyError | None] = field(default_factory=list)
    gate: threading.Event | None = None
    calls: list[Notification] = field(default_factory=list)
    name: str = "fake"

    def send(self, notification: Notification) -> None:
        self.calls.append(notification)
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer


def _delivery(notifier: Notifier, note: Notification = NOTE) -> Delivery:
    return Delivery(KEY, notifier, note, ENTRY, "team:kreis-it")


def _sender(state: StoredState, notifier: Notifier | None, clock: Clock,
            dispatcher: Dispatcher | None = None, **settings: float) -> Sender:
    return Sender(outbox=state, notifier=lambda receiver, name: notifier, clock=clock,
                  settings=DeliverySettings.model_validate(settings), dispatcher=dispatcher)


# --- the outbox contract ------------------------------------------------------------------------

@pytest.fixture(params=[pytest.param("memory", marks=pytest.mark.store),
                        pytest.param("dir", marks=pytest.mark.store)])
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> StoredState:
    """A store in memory, and the collector's in its state dir."""
    return StoredState(new_store() if request.param == "memory" else store_at(tmp_path))


def _item(message: str = "one", at_: datetime = T0, entry: LogEntry = ENTRY) -> Outgoing:
    return Outgoing(KEY, "team:kreis-it", "fake", message, entry, at_, at_)


def test_a_newer_message_replaces_the_queued_one_but_keeps_its_back_off(
        outbox: StoredState) -> None:
    first = outbox.enqueue(_item("one"))
    assert first.version == 1 and outbox.is_queued(KEY)
    outbox.retry_later(KEY, 2, T0 + timedelta(minutes=1), "HTTP 503")
    newer = LogEntry(frozenset({"fp-1", "fp-2"}), frozenset(), T0 + timedelta(seconds=30))
    stored = outbox.enqueue(_item("two", T0 + timedelta(seconds=30), newer))
    assert (stored.message, stored.entry, stored.version) == ("two", newer, 2)
    assert (stored.attempts, stored.next_at, stored.error) == (2, T0 + timedelta(minutes=1),
                                                               "HTTP 503")
    assert stored.queued_at == T0
    assert outbox.outgoing(due_by=T0 + timedelta(seconds=59)) == []
    assert outbox.outgoing(due_by=T0 + timedelta(minutes=1)) == [stored]


def test_a_delivery_is_logged_and_unqueued_in_one_step(outbox: StoredState) -> None:
    item = outbox.enqueue(_item())
    assert outbox.delivered(item) is True
    assert outbox.log_entry(KEY) == ENTRY and outbox.outgoing() == []
    # Delivered while a newer message waited: that one was judged against the old log, it goes.
    older = outbox.enqueue(_item("one"))
    outbox.enqueue(_item("two", entry=LogEntry(frozenset({"fp-1", "fp-2"}), frozenset(), T0)))
    assert outbox.delivered(older) is False
    assert outbox.outgoing() == [] and not outbox.is_queued(KEY)


def test_the_same_news_judged_again_keeps_the_queued_message_and_its_id(
        outbox: StoredState) -> None:
    # a restart or a new leader judges the group again: same alerts, a later rendering; the queued
    # message stays, so a try that reached the receiver before is repeated under the same id
    first = outbox.enqueue(_item("one"))
    again = outbox.enqueue(_item("one, rendered later", T0 + timedelta(seconds=5),
                                 LogEntry(ENTRY.firing, ENTRY.resolved, T0 + timedelta(seconds=5))))
    assert again == first and delivery_id(again) == delivery_id(first)
    other = outbox.enqueue(_item("two", entry=LogEntry(frozenset({"fp-2"}), frozenset(), T0)))
    assert (other.message, other.version) == ("two", 2)
    assert delivery_id(other) != delivery_id(first)


def test_giving_up_unqueues(outbox: StoredState) -> None:
    outbox.enqueue(_item())
    outbox.give_up(KEY)
    assert outbox.outgoing() == [] and outbox.log_entry(KEY) is None


@pytest.mark.store
def test_the_outbox_outlives_the_process(tmp_path: Path) -> None:
    first = StoredState(store_at(tmp_path))
    first.enqueue(_item(encode(NOTE)))
    first.retry_later(KEY, 1, T0 + timedelta(seconds=10), "HTTP 500")
    second = StoredState(store_at(tmp_path))  # the collector started again
    (item,) = second.outgoing()
    assert (item.attempts, item.next_at, item.entry) == (1, T0 + timedelta(seconds=10), ENTRY)
    assert decode(item.message) == NOTE


# --- the sender ---------------------------------------------------------------------------------

def test_the_back_off_doubles_is_capped_and_the_tries_are_bounded(
        caplog: pytest.LogCaptureFixture) -> None:
    clock, state = Clock(), StoredState.in_memory()
    fake = Fake([NotifyError("HTTP 503")] * 10)
    sender = _sender(state, fake, clock, attempts=4, backoff_initial_s=10, backoff_max_s=25)
    waits: list[float] = []

    async def run() -> None:
        sender.submit([_delivery(fake)])
        while True:
            await asyncio.gather(*sender.pump())
            queued = state.outgoing()
            if not queued:
                return
            waits.append((queued[0].next_at - clock.now).total_seconds())
            assert sender.pump() == []  # not before its time
            clock.now = queued[0].next_at

    asyncio.run(run())
    assert waits == [10, 20, 25]
    assert len(fake.calls) == 4
    assert (sender.stats.failed, sender.stats.given_up, sender.stats.delivered) == (4, 1, 0)
    assert f"notify {KEY}: given up after 4 tries (retryable): HTTP 503" in caplog.text
    assert state.log_entry(KEY) is None  # not told: the group's next flush tells it again


def test_a_permanent_error_is_given_up_at_once() -> None:
    clock, state = Clock(), StoredState.in_memory()
    fake = Fake([NotifyError("HTTP 404", retryable=False)])
    sender = _sender(state, fake, clock)

    async def run() -> None:
        sender.submit([_delivery(fake)])
        await asyncio.gather(*sender.pump())

    asyncio.run(run())
    assert (len(fake.calls), sender.stats.given_up) == (1, 1)
    assert state.outgoing() == []


class _Watched(StoredState):
    def __init__(self) -> None:
        super().__init__(new_store())
        self.retried = asyncio.Event()

    def retry_later(self, log_key: str, attempts: int, next_at: datetime, error: str) -> None:
        super().retry_later(log_key, attempts, next_at, error)
        self.retried.set()


def test_a_try_that_times_out_is_failed_never_overlapped_and_counts_if_it_arrives_late() -> None:
    clock, state, gate = Clock(), _Watched(), threading.Event()
    fake = Fake(gate=gate)  # hangs until the gate opens, then succeeds
    sender = _sender(state, fake, clock, timeout_s=0.05)

    async def run() -> None:
        sender.submit([_delivery(fake)])
        (task,) = sender.pump()
        await asyncio.wait_for(state.retried.wait(), 10)  # timed out: failed, back-off set
        assert (sender.stats.timed_out, sender.stats.failed) == (1, 1)
        (queued,) = state.outgoing()
        assert queued.error == "no answer within 0.05 s"
        clock.now = queued.next_at
        assert sender.pump() == []  # due again, but its first try is still under way
        gate.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(run())
    assert len(fake.calls) == 1
    assert (sender.stats.late, sender.stats.delivered) == (1, 1)
    assert state.outgoing() == [] and state.log_entry(KEY) == ENTRY


def test_a_notification_whose_receiver_is_gone_after_a_restart_is_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    state = StoredState.in_memory()
    state.enqueue(Outgoing(KEY, "team:gone", "webhook-3", encode(NOTE), ENTRY, T0, T0))
    sender = _sender(state, None, Clock())

    async def run() -> None:
        await asyncio.gather(*sender.pump())

    asyncio.run(run())
    assert state.outgoing() == [] and sender.stats.given_up == 1
    assert "receiver team:gone has no notifier webhook-3 any more" in caplog.text


def _changes(notification: Notification) -> dict[str, str]:
    return {a["labels"]["alertname"]: a["change"] for a in notification.payload["alerts"]}


def test_news_judged_while_an_older_message_was_on_its_way_is_judged_again() -> None:
    """An older message arrives while a newer one for the same notifier waits: the newer one
    (judged without the older in the log) would tell the older's news again, so it is dropped and
    the group judged again."""
    clock, state, gate = Clock(), StoredState.in_memory(), threading.Event()
    fake = Fake(gate=gate)
    dispatcher = Dispatcher(org=ORG, router=Router(ORG, ()),
                            timing=GroupTiming(timedelta(seconds=30), timedelta(minutes=5),
                                               timedelta(hours=4)),
                            notifiers=lambda receiver: [fake], log_store=state)
    sender = _sender(state, fake, clock, dispatcher=dispatcher)
    alerts = [alert("door_open", T0)]

    async def tick(at_: datetime) -> list[asyncio.Task[None]]:
        clock.now = at_
        sender.submit(dispatcher.due(alert_statuses(alerts, [], [], at_), at_))
        return sender.pump()

    async def run() -> None:
        await tick(T0)
        (first,) = await tick(T0 + timedelta(seconds=30))  # hangs at the receiver
        alerts.append(alert("slot_overpower", T0 + timedelta(minutes=1), slot=1))
        assert await tick(T0 + timedelta(minutes=5, seconds=30)) == []  # queued behind it
        (waiting,) = state.outgoing()
        assert _changes(decode(waiting.message)) == {"door_open": "new", "slot_overpower": "new"}
        gate.set()
        await first
        assert state.outgoing() == []
        await asyncio.gather(*await tick(T0 + timedelta(minutes=5, seconds=31)))

    asyncio.run(run())
    assert [_changes(n) for n in fake.calls] == [
        {"door_open": "new"},
        {"slot_overpower": "new", "door_open": "still_open"},  # door_open is not news twice
    ]


def test_a_digest_waiting_in_the_outbox_is_not_made_again() -> None:
    monday = at(datetime(2026, 11, 16).date(), 7, 20)
    statuses = alert_statuses([alert("door_open", monday - timedelta(hours=1))], [], [], monday)
    queued: set[str] = set()

    def dispatcher() -> Dispatcher:
        return Dispatcher(org=ORG, router=Router(ORG, ()),
                          timing=GroupTiming(timedelta(seconds=30), timedelta(minutes=5),
                                             timedelta(hours=4)),
                          notifiers=lambda receiver: [Fake()], log_store=StoredState.in_memory(),
                          calendars=Calendars(BERLIN, "SL", [SHIPPED]), digest_time=time(7, 15),
                          queued=queued.__contains__)

    (digest,) = [d for d in dispatcher().due(statuses, monday) if d.notification.kind == "digest"]
    assert digest.receiver == "school:gs-park"
    queued.add(digest.log_key)
    assert [d for d in dispatcher().due(statuses, monday) if d.notification.kind == "digest"] == []


# --- redaction ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "shown"), [
    (TOKEN_URL, "https://hooks.example/…"),
    ("https://hooks.slack.com/services/T0/B0/XXXX", "https://hooks.slack.com/…"),
    ("https://x.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d", "https://x.webhook.office.com/…"),
    ("https://discord.com/api/webhooks/123/tok", "https://discord.com/…"),
    ("https://user:pass@tickets.example:8443", "https://tickets.example:8443/…"),
    ("http://[::1]:8080/hook", "http://[::1]:8080/…"),
    ("https://tickets.example", "https://tickets.example"),
    ("https://tickets.example/", "https://tickets.example"),
    ("tgram://123456:bot-token/4711", "tgram://…"),
    ("mmosts://bot:token@chat.example/schul-it", "mmosts://…"),
    ("https://host:notaport/x", HIDDEN),
    ("no url at all", HIDDEN),
])
def test_a_url_is_shown_as_scheme_and_host_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_urls_and_request_lines_in_free_text_are_redacted() -> None:
    assert redact_text(f"webhook {redact_url(TOKEN_URL)}: HTTP 500; see ({TOKEN_URL}).") == \
        "webhook https://hooks.example/…: HTTP 500; see (https://hooks.example/…)."
    assert redact_text('"POST /services/T000/B000/SECRETTOKEN HTTP/1.1" 500 0') == \
        '"POST /… HTTP/1.1" 500 0'


def test_the_filter_redacts_third_party_records_and_their_tracebacks() -> None:
    try:
        raise ValueError(f"cannot post to {TOKEN_URL}")
    except ValueError:
        record = logging.LogRecord("apprise", logging.WARNING, __file__, 1, "posting to %s", (TOKEN_URL,),
                                   sys.exc_info())
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "posting to https://hooks.example/…"
    assert record.exc_text is not None and "cannot post to https://hooks.example/…" in record.exc_text
    assert "SECRETTOKEN" not in record.exc_text


def test_check_config_shows_receiver_and_tsdb_urls_without_their_secrets(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "server.toml"
    path.write_text(f"""
[tsdb]
url = "https://writer:influx-pw@influx.example:8086"
[organisation]
district_team = "it"
[[organisation.teams]]
id = "it"
name = "IT"
[organisation.teams.contacts]
webhooks = [{{ url = "{TOKEN_URL}", secret = "hmac-key" }}]
""", encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out)
    assert shown["organisation"]["teams"][0]["contacts"]["webhooks"][0]["url"] == \
        "https://hooks.example/…"
    assert shown["tsdb"]["url"] == "https://influx.example:8086/…"
    for secret in ("SECRETTOKEN", "token=abc", "T000", "influx-pw", "writer", "hmac-key"):
        assert secret not in out, secret
    # Only the printed form is redacted: the notifier still posts to the whole URL.
    settings = load_server_settings(path)
    assert settings.organisation.teams[0].contacts.webhooks[0].url == TOKEN_URL


def test_the_old_webhook_retry_keys_still_count(tmp_path: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text("[notify.webhook]\nattempts = 7\nbackoff_initial_s = 2.0\n", encoding="utf-8")
    delivery = load_server_settings(path).notify.delivery
    assert (delivery.attempts, delivery.backoff_initial_s, delivery.backoff_max_s) == (7, 2.0, 300.0)
    path.write_text("[notify.webhook]\nattempts = 7\n[notify.delivery]\nattempts = 3\n",
                    encoding="utf-8")
    assert load_server_settings(path).notify.delivery.attempts == 3  # the new key wins
