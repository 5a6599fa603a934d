"""Signed JSON webhooks (stdlib urllib): one try per ``send``.

The body is the notification's JSON document; ``X-Ladewache-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the exact body bytes with the webhook's secret, so the receiver can check that the
message is ours and unchanged (compare with ``hmac.compare_digest``). ``X-Ladewache-Key`` carries
the group key; ``X-Ladewache-Id`` is the same on every try of one message, so a receiver that
sees it twice can drop the repeat (delivery is at least once: ``server.notify.sender``). 5xx,
429 and network errors are retryable, other 4xx are not; the retries run from the outbox
(``server.notify.sender``), never here, so that a receiver that fails holds up nobody. The URL
usually carries the receiver's token: errors name it as ``scheme://host/…`` only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request

from server.org import ContactSettings, WebhookTarget
from server.redact import redact_url

from .base import NOTIFIER_KINDS, Notification, Notifier, NotifyError
from .settings import NotifySettings, WebhookSettings

__all__ = ["ID_HEADER", "SIGNATURE_HEADER", "WebhookNotifier", "sign"]

SIGNATURE_HEADER = "X-Ladewache-Signature"
ID_HEADER = "X-Ladewache-Id"  # the same on every try of one message: receivers drop repeats


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    def __init__(self, name: str, target: WebhookTarget, settings: WebhookSettings) -> None:
        self.name = name
        self._url = target.url
        self._shown = redact_url(target.url)
        self._secret = target.secret.get_secret_value().encode()
        self._settings = settings

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.name!r}, {self._shown!r})"

    def send(self, notification: Notification) -> None:
        body = json.dumps(notification.payload, sort_keys=True, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "ladewache",
                   "X-Ladewache-Key": notification.key}
        if notification.id:
            headers[ID_HEADER] = notification.id
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._settings.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response and its socket
            retryable = exc.code >= 500 or exc.code == 429
            raise NotifyError(f"webhook {self._shown}: HTTP {exc.code}",
                              retryable=retryable) from exc
        except (urllib.error.URLError, OSError) as exc:
            # The reason, not str(exc): nothing of the URL beyond what _shown keeps.
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise NotifyError(f"webhook {self._shown}: {reason}") from exc


def _factory(contacts: ContactSettings, settings: NotifySettings) -> list[Notifier]:
    return [WebhookNotifier(f"webhook-{i}", target, settings.webhook)
            for i, target in enumerate(contacts.webhooks)]


NOTIFIER_KINDS.register("webhook", _factory)
