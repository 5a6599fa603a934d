"""Secrets out of URLs before they are logged, printed or stored: one helper for every receiver.

Webhook and chat URLs are credentials: a token in the query (``?token=…``), a user and password
before the host, or the path itself (Slack ``/services/T…/B…/<token>``, Teams
``/webhookb2/…/IncomingWebhook/<id>/…``, Discord ``/api/webhooks/<id>/<token>``). No pattern knows
every service's path, so the whole path goes: ``https://hooks.example/…``. For schemes other than
http(s) (Apprise's ``tgram://<bot token>/…``, ``discord://<id>/<token>``) even the "host" is often a
token, so only the scheme is kept.

Imports nothing from ``server``: ``server.org`` and ``server.config`` use it when a config is shown.
"""

from __future__ import annotations

import logging
import re
from typing import Final
from urllib.parse import urlsplit

__all__ = ["HIDDEN", "RedactingFilter", "redact_text", "redact_url"]

HIDDEN: Final = "(URL hidden)"
_HOST_SHOWN: Final = frozenset({"http", "https"})
# A URL inside free text (an error message, a third-party library's log line); punctuation at
# its end belongs to the sentence.
_URL_IN_TEXT: Final = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+?(?=[.,;:)\]]*(?:[\s'\"<>]|$))")
# A request line in an HTTP client's debug log (urllib3: '"POST /services/T…/B…/token HTTP/1.1"').
_REQUEST_LINE: Final = re.compile(r"\b([A-Z]{3,7}) /[^\s\"']*( HTTP/\d)")


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` and ``/…`` if anything followed; never userinfo, path, query or
    fragment. What cannot be parsed is hidden whole."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if not scheme or not parts.netloc:
            return HIDDEN
        if scheme not in _HOST_SHOWN:
            return f"{scheme}://…"
        host = parts.hostname  # without userinfo, lower case
        port = parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        return HIDDEN
    if not host:
        return HIDDEN
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    more = parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc
    return f"{scheme}://{netloc}/…" if more else f"{scheme}://{netloc}"


def redact_text(text: str) -> str:
    """Every URL and HTTP request line's path in ``text`` redacted; the rest unchanged."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
    return _REQUEST_LINE.sub(r"\1 /…\2", text)


class RedactingFilter(logging.Filter):
    """Redacts URLs in the records of a logger whose messages we do not write (Apprise logs the
    URLs it posts to, urllib3 the paths). Attach it to that logger: a logger's filters see the
    records of that logger only, not of its children."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: logging reports it itself
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # The formatter uses exc_text when it is set: the traceback's messages are redacted too.
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True
