"""E-mail to a real SMTP server (aiosmtpd on a free loopback port) with STARTTLS and AUTH."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from server.alerts.model import Alert
from server.alerts.status import AlertStatus
from server.notify import NotifyError, SmtpSettings
from server.notify.email import EmailNotifier
from server.notify.render import render_group
from server.org import Organisation
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@dataclass
class Mailbox:
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"ladewache"
          and auth_data.password == b"geheim")
    return AuthResult(success=ok, handled=False)


@dataclass
class Smtp:
    port: int
    mailbox: Mailbox
    ca_file: Path


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[Smtp]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=_authenticator,
                            auth_require_tls=True)
    controller.start()
    yield Smtp(port, mailbox, ca_file)
    controller.stop()


def _notification(lang: str = "de") -> Any:
    org = Organisation.model_validate({
        "district_team": "it", "teams": [{"id": "it", "name": "Schul-IT"}],
        "municipalities": [{"id": "m", "name": "Musterdorf"}],
        "schools": [{"site": "gs-park", "name": "GS am Park", "municipality": "m"}],
        "cabinets": [{"school": "gs-park", "id": "k1", "name": "Raum 12"}],
    })
    alert = Alert({"alertname": "cabinet_offline", "severity": "critical", "site": "gs-park",
                   "cabinet": "k1"}, {"reason": "lwt"}, NOW, NOW)
    status = AlertStatus(alert, alert.state(NOW))
    return render_group(org=org, lang=lang, key="team:it/gs-park/k1", receiver="Schul-IT",  # type: ignore[arg-type]
                        site="gs-park", cabinet="k1", firing=[status], resolved=[], now=NOW)


def _settings(smtp: Smtp, **overrides: Any) -> SmtpSettings:
    values = {"host": "127.0.0.1", "port": smtp.port, "security": "starttls",
              "username": "ladewache", "password": "geheim", "from_addr": "ladewache@kreis.example",
              "ca_file": smtp.ca_file, "timeout_s": 10}
    return SmtpSettings.model_validate({**values, **overrides})


def test_an_alert_group_arrives_by_mail_over_starttls_with_auth(smtp_server: Smtp) -> None:
    notifier = EmailNotifier(_settings(smtp_server), ["it@kreis.example", "chef@kreis.example"])
    notifier.send(_notification())
    ((sender, recipients, message),) = smtp_server.mailbox.messages
    assert sender == "ladewache@kreis.example"
    assert recipients == ["it@kreis.example", "chef@kreis.example"]
    assert message["Subject"] == "[Ladewache] 1 aktive(r) Alarm(e): Raum 12, GS am Park"
    assert message["X-Ladewache-Key"] == "team:it/gs-park/k1"
    body = message.get_content()
    assert "Schrank Raum 12 (GS am Park) ist offline: Verbindung verloren (Last Will)" in body
    assert "[kritisch]" in body


def test_english_texts_on_request(smtp_server: Smtp) -> None:
    EmailNotifier(_settings(smtp_server), ["it@kreis.example"]).send(_notification("en"))
    message = smtp_server.mailbox.messages[0][2]
    assert message["Subject"] == "[Ladewache] 1 firing alert(s): Raum 12, GS am Park"
    assert "Cabinet Raum 12 (GS am Park) is offline" in message.get_content()


def test_a_wrong_password_is_a_permanent_error(smtp_server: Smtp) -> None:
    notifier = EmailNotifier(_settings(smtp_server, password="falsch"), ["it@kreis.example"])
    with pytest.raises(NotifyError) as info:
        notifier.send(_notification())
    assert info.value.retryable is False
    assert smtp_server.mailbox.messages == []


def test_an_untrusted_certificate_is_refused_and_may_be_retried(smtp_server: Smtp) -> None:
    notifier = EmailNotifier(_settings(smtp_server, ca_file=None), ["it@kreis.example"])
    with pytest.raises(NotifyError, match="CERTIFICATE_VERIFY_FAILED") as info:
        notifier.send(_notification())
    assert info.value.retryable is True
    assert smtp_server.mailbox.messages == []


def test_an_unreachable_server_is_retryable() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), timeout_s=2)
    with pytest.raises(NotifyError) as info:
        EmailNotifier(settings, ["it@kreis.example"]).send(_notification())
    assert info.value.retryable is True
