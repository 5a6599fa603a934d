"""Password hashing with scrypt (stdlib, memory-hard): no native dependency to build on a Pi.

Stored as ``scrypt$n$r$p$salt$hash`` (base64), so the cost can be raised later and old hashes
still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

__all__ = ["hash_password", "verify_password"]

# n=2**14, r=8: 16 MiB and ~50 ms per hash; OWASP's minimum for scrypt.
_N: Final = 2**14
_R: Final = 8
_P: Final = 1
_LEN: Final = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=128 * n * r * p + 1024 * 1024, dklen=_LEN)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(_derive(password, salt, _N, _R, _P))}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        actual = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))
