"""Signed webhooks to a real HTTP receiver, one try per send (retries run from the outbox:
test_notif_delivery.py), and chat through Apprise."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from server.notify import Notification, NotifyError, WebhookSettings
from server.notify.chat import AppriseNotifier
from server.notify.webhook import SIGNATURE_HEADER, WebhookNotifier
from server.org import WebhookTarget
from tests.support.http_receiver import http_receiver

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SECRET = "s3cr3t-hmac-key"
NOTE = Notification("alerts", "team:it/gs-park/k1", "[Ladewache] 1 aktive(r) Alarm(e): k1",
                    "Schrank k1 (gs-park) ist offline",
                    {"version": 1, "kind": "alerts", "status": "firing", "site": "gs-park",
                     "summary": "Schrank k1 (gs-park) ist offline – Prüfung läuft"})
FAST = WebhookSettings(timeout_s=5)


def _verify(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def test_a_500_is_one_retryable_try_and_the_next_try_delivers_signed_json() -> None:
    with http_receiver([500]) as receiver:
        notifier = WebhookNotifier("webhook-0", WebhookTarget(url=receiver.url + "/hook",
                                                              secret=SecretStr(SECRET)), FAST)
        with pytest.raises(NotifyError, match="HTTP 500") as info:
            notifier.send(NOTE)
        assert info.value.retryable is True  # the outbox tries again, after its back-off
        assert [r.status for r in receiver.requests] == [500]  # one try: no waiting in here
        notifier.send(NOTE)
    assert [r.status for r in receiver.requests] == [500, 200]
    (delivered,) = receiver.delivered()
    assert delivered.path == "/hook"
    assert delivered.headers["Content-Type"] == "application/json"
    assert delivered.headers["X-Ladewache-Key"] == "team:it/gs-park/k1"
    assert _verify(delivered.body, delivered.headers[SIGNATURE_HEADER])
    assert delivered.json()["summary"] == "Schrank k1 (gs-park) ist offline – Prüfung läuft"
    assert not _verify(delivered.body + b" ", delivered.headers[SIGNATURE_HEADER])


def test_a_4xx_is_not_retried() -> None:
    with http_receiver([400]) as receiver:
        notifier = WebhookNotifier("w", WebhookTarget(url=receiver.url), FAST)
        with pytest.raises(NotifyError) as info:
            notifier.send(NOTE)
    assert info.value.retryable is False
    assert len(receiver.requests) == 1


def test_without_a_secret_there_is_no_signature() -> None:
    with http_receiver() as receiver:
        WebhookNotifier("w", WebhookTarget(url=receiver.url), FAST).send(NOTE)
    assert SIGNATURE_HEADER not in receiver.requests[0].headers


def test_chat_through_apprise() -> None:
    # Apprise's generic JSON service stands in for a chat server: the same code path as
    # mmost://, matrix://, tgram://, … without a chat server in the test.
    with http_receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        AppriseNotifier([f"json://127.0.0.1:{port}/chat"]).send(NOTE)
    (request,) = receiver.requests
    assert request.path == "/chat"
    body = request.json()
    assert body["title"] == NOTE.subject
    assert body["message"] == NOTE.body


def test_apprise_failures_are_notify_errors() -> None:
    with http_receiver([500]) as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        with pytest.raises(NotifyError, match="could not deliver"):
            AppriseNotifier([f"json://127.0.0.1:{port}/chat"]).send(NOTE)
    with pytest.raises(NotifyError, match="not understood") as info:
        AppriseNotifier(["nonsense-scheme://x"]).send(NOTE)
    assert info.value.retryable is False


def test_the_registry_refuses_duplicate_kinds() -> None:
    from server.notify import NOTIFIER_KINDS

    assert sorted(NOTIFIER_KINDS.names()) == ["apprise", "email", "webhook"]
    with pytest.raises(ValueError, match="notifier kind 'email' is registered twice"):
        NOTIFIER_KINDS.register("email", lambda contacts, settings: [])
