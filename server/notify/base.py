"""One interface for every way of telling someone, and a registry of the kinds.

A ``Notifier`` is bound to its destination (an SMTP server and addresses, one webhook URL, a set of
Apprise URLs) and sends one rendered ``Notification``; it raises ``NotifyError`` on failure, saying
whether trying again later could help. Kinds register a factory by name; a duplicate name fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cabinet_agent.common.registry import Registry
from server.errors import ServerError
from server.org import ContactSettings

from .settings import NotifySettings

__all__ = ["NOTIFIER_KINDS", "Notification", "Notifier", "NotifierFactory", "NotifyError",
           "build_notifiers"]


class NotifyError(ServerError):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Notification:
    kind: str  # "alerts" (one group) or "digest" (one school's day)
    key: str  # the group key or the digest key
    subject: str
    body: str  # plain text, complete: a chat message or an e-mail body
    payload: Mapping[str, Any] = field(default_factory=dict)  # the JSON document for webhooks
    # The same for every try of one queued message (server.notify.sender): a receiver that
    # sees an id twice got the same message again (a try whose answer was lost, a leader that
    # died between the answer and its log entry). Webhooks: X-Ladewache-Id; e-mail: Message-ID.
    id: str = ""


class Notifier(Protocol):
    @property
    def name(self) -> str:
        """Unique within one receiver ("email", "webhook-0", …): part of the notification log key."""

    def send(self, notification: Notification) -> None: ...


NotifierFactory = Callable[[ContactSettings, NotifySettings], list[Notifier]]


def build_notifiers(contacts: ContactSettings, settings: NotifySettings) -> list[Notifier]:
    """Every notifier the contacts ask for, over all registered kinds (by name: a stable order)."""
    return [n for _kind, factory in sorted(NOTIFIER_KINDS, key=lambda item: item[0])
            for n in factory(contacts, settings)]


NOTIFIER_KINDS: Registry[NotifierFactory] = Registry("notifier kind")
