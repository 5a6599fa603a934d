"""Notifications: rendering, the ``Notifier`` interface and its kinds (e-mail, webhook, Apprise)."""

from . import chat, email, webhook  # noqa: F401  (each registers its kind)
from .base import NOTIFIER_KINDS, Notification, Notifier, NotifyError, build_notifiers
from .settings import NotifySettings, SmtpSettings, WebhookSettings

__all__ = [
    "NOTIFIER_KINDS",
    "Notification",
    "Notifier",
    "NotifyError",
    "NotifySettings",
    "SmtpSettings",
    "WebhookSettings",
    "build_notifiers",
]
