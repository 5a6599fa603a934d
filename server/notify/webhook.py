"""Signed JSON webhooks (stdlib urllib), retried with exponential back-off.

The body is the notification's JSON document; ``X-Ladewache-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the exact body bytes with the webhook's secret, so the receiver can check that the
message is ours and unchanged (compare with ``hmac.compare_digest``). ``X-Ladewache-Key`` carries
the group key for idempotent receivers. 5xx, 429 and network errors are retried; other 4xx are not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from server.org import ContactSettings, WebhookTarget

from .base import NOTIFIER_KINDS, Notification, Notifier, NotifyError
from .settings import NotifySettings, WebhookSettings

__all__ = ["SIGNATURE_HEADER", "WebhookNotifier", "sign"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Ladewache-Signature"


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    def __init__(self, name: str, target: WebhookTarget, settings: WebhookSettings,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = name
        self._url = target.url
        self._secret = target.secret.get_secret_value().encode()
        self._settings = settings
        self._sleep = sleep  # injected: the back-off runs in the notifier thread, tests may skip it

    def _post(self, body: bytes, key: str) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "ladewache",
                   "X-Ladewache-Key": key}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._settings.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response and its socket
            retryable = exc.code >= 500 or exc.code == 429
            raise NotifyError(f"webhook {self._url}: HTTP {exc.code}", retryable=retryable) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise NotifyError(f"webhook {self._url}: {exc}") from exc

    def send(self, notification: Notification) -> None:
        body = json.dumps(notification.payload, sort_keys=True, ensure_ascii=False).encode()
        delay = self._settings.backoff_initial_s
        for attempt in range(1, self._settings.attempts + 1):
            try:
                self._post(body, notification.key)
                return
            except NotifyError as exc:
                if not exc.retryable or attempt == self._settings.attempts:
                    raise
                log.warning("%s (try %d of %d); again in %.1f s", exc, attempt,
                            self._settings.attempts, delay)
            self._sleep(delay)
            delay = min(delay * 2, self._settings.backoff_max_s)


def _factory(contacts: ContactSettings, settings: NotifySettings) -> list[Notifier]:
    return [WebhookNotifier(f"webhook-{i}", target, settings.webhook)
            for i, target in enumerate(contacts.webhooks)]


NOTIFIER_KINDS.register("webhook", _factory)
