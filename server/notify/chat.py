"""Chat services (Mattermost, Matrix, Teams, Telegram, Signal, …) through Apprise, so that no
service's API is written by hand here. Apprise is imported when the first message is sent.

Apprise URLs are credentials (tokens in host, path or query): they are never put into a message
of ours, and Apprise's own log lines (it names the URLs it posts to) and those of its HTTP client
pass ``RedactingFilter``."""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from types import ModuleType

from server.org import ContactSettings
from server.redact import RedactingFilter

from .base import NOTIFIER_KINDS, Notification, Notifier, NotifyError
from .settings import NotifySettings

__all__ = ["AppriseNotifier"]


@functools.cache
def _apprise() -> ModuleType:
    """Import Apprise once. Its PGP helper imports the stdlib ``imghdr`` (a shim for Python 3.13),
    which warns on 3.11/3.12: that one warning is silenced here, nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'imghdr' is deprecated",
                                category=DeprecationWarning)
        import apprise

        with contextlib.suppress(ImportError):
            import apprise.utils.pgp
    # Every Apprise plugin logs through the one "apprise" logger; its HTTP client (requests)
    # logs each request line, path included, through urllib3's.
    for name in ("apprise", "urllib3.connectionpool"):
        logging.getLogger(name).addFilter(RedactingFilter())
    return apprise


class AppriseNotifier:
    name = "apprise"

    def __init__(self, urls: list[str]) -> None:
        if not urls:
            raise ValueError("no Apprise URLs")
        self._urls = list(urls)

    def send(self, notification: Notification) -> None:
        client = _apprise().Apprise()
        for url in self._urls:
            if not client.add(url):
                # The URL itself is not shown: it usually carries a token.
                raise NotifyError("an Apprise URL was not understood", retryable=False)
        if not client.notify(title=notification.subject, body=notification.body):
            raise NotifyError("Apprise could not deliver to every service")


def _factory(contacts: ContactSettings, settings: NotifySettings) -> list[Notifier]:
    if not contacts.apprise:
        return []
    return [AppriseNotifier([url.get_secret_value() for url in contacts.apprise])]


NOTIFIER_KINDS.register("apprise", _factory)
