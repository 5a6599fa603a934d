"""E-mail over SMTP (stdlib smtplib): STARTTLS or implicit TLS with certificate checks, AUTH.

Failures are classified: a 4xx reply or a network error is retryable, a 5xx reply (address
refused, authentication rejected) is not.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from server.org import ContactSettings

from .base import NOTIFIER_KINDS, Notification, Notifier, NotifyError
from .settings import NotifySettings, SmtpSettings

__all__ = ["EmailNotifier"]

log = logging.getLogger(__name__)


class EmailNotifier:
    name = "email"

    def __init__(self, smtp: SmtpSettings, to: list[str]) -> None:
        if smtp.host is None:
            raise ValueError("no SMTP host configured")
        if not to:
            raise ValueError("no recipients")
        self._smtp = smtp
        self._host = smtp.host
        self._to = list(to)

    def message(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._smtp.from_addr
        message["To"] = ", ".join(self._to)
        message["Subject"] = notification.subject
        message["Date"] = formatdate(localtime=False)
        # the same on every try of one message: mail clients show a repeat once
        message["Message-ID"] = (f"<{notification.id}@ladewache>" if notification.id
                                 else make_msgid(domain="ladewache"))
        message["X-Ladewache-Key"] = notification.key
        message.set_content(notification.body)
        return message

    def _context(self) -> ssl.SSLContext:
        cafile = str(self._smtp.ca_file) if self._smtp.ca_file else None
        return ssl.create_default_context(cafile=cafile)

    def send(self, notification: Notification) -> None:
        smtp = self._smtp
        try:
            client: smtplib.SMTP
            if smtp.security == "tls":
                client = smtplib.SMTP_SSL(self._host, smtp.port, timeout=smtp.timeout_s,
                                          context=self._context())
            else:
                client = smtplib.SMTP(self._host, smtp.port, timeout=smtp.timeout_s)
            with client:
                client.ehlo()
                if smtp.security == "starttls":
                    # starttls() raises SMTPNotSupportedError when the server does not offer it:
                    # we never fall back to sending the password in the clear.
                    client.starttls(context=self._context())
                    client.ehlo()
                if smtp.username:
                    password = smtp.password.get_secret_value() if smtp.password else ""
                    client.login(smtp.username, password)
                client.send_message(self.message(notification))
        except smtplib.SMTPResponseException as exc:
            raise NotifyError(f"SMTP {self._host}: {exc.smtp_code} {exc.smtp_error!r}",
                              retryable=400 <= exc.smtp_code < 500) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise NotifyError(f"SMTP {self._host}: recipients refused: {list(exc.recipients)}",
                              retryable=False) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise NotifyError(f"SMTP {self._host}: {exc}", retryable=False) from exc
        except (OSError, smtplib.SMTPException) as exc:  # ssl.SSLError is an OSError
            raise NotifyError(f"SMTP {self._host}:{smtp.port}: {exc}") from exc


def _factory(contacts: ContactSettings, settings: NotifySettings) -> list[Notifier]:
    if not contacts.email:
        return []
    if settings.smtp.host is None:
        log.warning("e-mail addresses %s configured but no [notify.smtp] host", contacts.email)
        return []
    return [EmailNotifier(settings.smtp, contacts.email)]


NOTIFIER_KINDS.register("email", _factory)
