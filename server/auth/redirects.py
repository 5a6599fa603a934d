"""Redirect targets taken from a request (``next`` after the login, ``back`` after a form): a path
on this site, or the default.

Browsers are lenient where a check written by hand is not: ``/\\evil.com`` is ``//evil.com`` (a
backslash counts as a slash), a tab or newline inside a URL is dropped (``/\\t/evil.com``), and
``//evil.com`` is another host. So a target is accepted only as a path of this site: one leading
``/``, no backslash, no control character or space anywhere, no empty, ``.`` or ``..`` path
segment (this dashboard's own paths have none), also after percent-decoding the path, and no
longer than ``MAX_LENGTH``. Anything else is replaced by the default, never repaired.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["MAX_LENGTH", "local_path"]

MAX_LENGTH: Final = 2000
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")  # control characters, space, backslash


def _safe_path(path: str) -> bool:
    if path == "/":
        return True
    if not path.startswith("/") or _UNSAFE.search(path):
        return False
    *inner, last = path[1:].split("/")  # a trailing slash leaves an empty last segment: fine
    return all(s not in ("", ".", "..") for s in inner) and last not in (".", "..")


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (normalised: path, query and fragment only), else
    ``default``."""
    if not target or len(target) > MAX_LENGTH or _UNSAFE.search(target):
        return default
    if not target.startswith("/") or target.startswith("//"):  # before urlsplit's leniency
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    if not (_safe_path(parts.path) and _safe_path(unquote(parts.path))):
        return default
    return urlunsplit(("", "", parts.path, parts.query, parts.fragment))
