"""Request bodies hold only what JSON can carry: a number too large for a float (``1e999``),
``NaN``, ``Infinity`` and text with a lone surrogate (``"\\ud800"``) are refused with 422 naming
the field, before any route sees them.

Python's JSON decoder accepts all of them (as ``inf``, ``nan`` and a ``str`` that is no Unicode
text), and a body with one made the JSON routes answer 500: the answer, which echoes the input
in a validation error or the stored value, cannot be encoded (RFC 8259 has no such numbers, UTF-8
no surrogates), and SQLite refuses to store such text. A float field would even keep ``inf``. The
check sits in front of the whole application, so every JSON body route gets it, today's and
tomorrow's.

FastAPI decodes a body as JSON when the request has no content type or an ``application/json``
or ``application/*+json`` one; this middleware checks the same bodies. A body that is not JSON at
all is left to FastAPI (422 ``json_invalid``), except one the decoder refuses with another error
(an integer of more than 4,300 digits, nesting too deep, bytes that are not UTF-8): FastAPI would
answer 400, which no route documents, so it gets 422 ``json_invalid`` here. A JSON body larger
than ``MAX_BODY_BYTES`` is refused with 413 unread.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from email.message import Message
from typing import Any, Final

from starlette.responses import JSONResponse

__all__ = ["MAX_BODY_BYTES", "StrictJsonBodies", "finite_message", "unrepresentable"]

MAX_BODY_BYTES: Final = 64 * 1024

Scope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CONSTANTS = frozenset({"NaN", "Infinity", "-Infinity"})


def finite_message(literal: str) -> str:
    if literal in _CONSTANTS:
        return f"Input should be a finite number: {literal} is not a JSON number"
    return f"Input should be a finite number: {literal} is too large for a 64-bit float"


class _NonFinite(str):
    """The literal of a number JSON cannot carry, kept to name it in the answer."""


def _parse_float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _not_text(value: str) -> bool:
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return False


Found = list[tuple[tuple[str | int, ...], str, str]]


def unrepresentable(body: bytes) -> Found:
    """(path, kind, what) of every value in ``body`` that JSON cannot carry: kind ``number``
    (what: its literal) or ``text`` (a string or key with a lone surrogate). Raises ValueError
    (or RecursionError) when ``body`` is not JSON."""
    document = json.loads(body, parse_float=_parse_float, parse_constant=_NonFinite)
    found: Found = []
    stack: list[tuple[tuple[str | int, ...], object]] = [((), document)]
    while stack:  # not recursive: a body may nest as deep as the decoder allows
        path, value = stack.pop()
        if isinstance(value, _NonFinite):
            found.append((path, "number", str(value)))
        elif isinstance(value, str):
            if _not_text(value):
                found.append((path, "text", value.encode("utf-8", "backslashreplace").decode()))
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if _not_text(key):
                    found.append(((*path, key.encode("utf-8", "backslashreplace").decode()),
                                  "text", "(key)"))
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, n), item) for n, item in reversed(list(enumerate(value))))
    return found


def _declared_length(scope: Scope) -> int:
    raw = next((v for k, v in scope["headers"] if k == b"content-length"), b"0")
    return int(raw) if raw.isdigit() else 0


def _is_json(scope: Scope) -> bool:
    content_type = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"),
                        None)
    if content_type is None:
        return True
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json"))


class StrictJsonBodies:
    """ASGI middleware: reads a JSON body whole (FastAPI does anyway), checks it, and passes it
    on unchanged or answers 422 in FastAPI's shape (``detail``: a list with ``loc``, ``msg``,
    ``type``), so the routes' documented 422 answer holds.

    It reads before any route or login check, on every path, so it reads at most
    ``MAX_BODY_BYTES`` (413 beyond): the API's bodies are a few hundred bytes, and an anonymous
    client must not make the collector buffer whatever it sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") \
                or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = _declared_length(scope)
        while size <= MAX_BODY_BYTES:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size = max(size, sum(map(len, chunks)))
            if not message.get("more_body", False):
                break
        if size > MAX_BODY_BYTES:
            too_large = JSONResponse({"detail": f"a JSON body may have at most {MAX_BODY_BYTES} "
                                                "bytes"}, status_code=413)
            await too_large(scope, receive, send)
            return
        body = b"".join(chunks)
        errors = _errors(body) if body else []
        if errors:
            await JSONResponse({"detail": errors}, status_code=422)(scope, receive, send)
            return
        replayed = False

        async def replay() -> ASGIMessage:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _errors(body: bytes) -> list[dict[str, Any]]:
    try:
        found = unrepresentable(body)
    except json.JSONDecodeError:
        return []  # FastAPI answers 422 json_invalid with the position
    except (ValueError, RecursionError) as exc:
        return [{"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error",
                 "input": {}, "ctx": {"error": str(exc)[:200]}}]
    return [{"type": "finite_number", "loc": ["body", *_shown(path)], "msg": finite_message(what),
             "input": what} if kind == "number" else
            {"type": "string_unicode", "loc": ["body", *_shown(path)],
             "msg": "Input should be Unicode text: a lone surrogate is no character",
             "input": what} for path, kind, what in found]


def _shown(path: tuple[str | int, ...]) -> list[str | int]:
    """The path as the answer can carry it (a key may itself hold a lone surrogate)."""
    return [p.encode("utf-8", "backslashreplace").decode() if isinstance(p, str) else p
            for p in path]
