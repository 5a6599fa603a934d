"""Users, API tokens and login sessions in SQLite (``users.sqlite`` in the ``[state] dir``).

Secrets are stored hashed only: passwords with scrypt, API tokens and session ids with SHA-256
(they are 256-bit random values, so a fast hash suffices). A token is shown once, when created:
``lw_<id>_<secret>``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from .model import Role, User
from .passwords import hash_password, verify_password

__all__ = ["USERS_FILE", "SessionRecord", "TokenInfo", "UserStore", "UserStoreError"]

USERS_FILE: Final = "users.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    municipality TEXT,
    school TEXT,
    password TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    label TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_sha256 TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"""


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when the user does not exist costs the same time as a real check,
    so the answer's timing does not tell which user names exist."""
    return hash_password(secrets.token_urlsafe(16))


class UserStoreError(ValueError):
    """A refused change (unknown user, name taken)."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    user: str
    label: str
    created_at: str


@dataclass(frozen=True, slots=True)
class SessionRecord:
    user: User
    csrf: str
    expires_at: datetime


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _user(row: tuple[str, str, str | None, str | None]) -> User:
    return User(row[0], Role(row[1]), row[2], row[3])


class UserStore:
    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(":memory:" if path is None else str(path),
                                   check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    # users

    def add_user(self, user: User, password: str, now: datetime) -> None:
        if len(password) < 10:
            raise UserStoreError("a password needs at least 10 characters")
        hashed = hash_password(password)
        with self._lock:
            try:
                self._db.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
                                 (user.name, user.role.value, user.municipality, user.school,
                                  hashed, now.isoformat()))
            except sqlite3.IntegrityError as exc:
                raise UserStoreError(f"user {user.name!r} exists") from exc

    def set_password(self, name: str, password: str) -> None:
        if len(password) < 10:
            raise UserStoreError("a password needs at least 10 characters")
        with self._lock:
            cursor = self._db.execute("UPDATE users SET password = ? WHERE name = ?",
                                      (hash_password(password), name))
            if cursor.rowcount == 0:
                raise UserStoreError(f"no user {name!r}")
            self._db.execute("DELETE FROM sessions WHERE user = ?", (name,))

    def remove_user(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, role, municipality, school FROM users ORDER BY name").fetchall()
        return [_user(r) for r in rows]

    def get(self, name: str) -> User | None:
        with self._lock:
            row = self._db.execute("SELECT name, role, municipality, school FROM users "
                                   "WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def check_password(self, name: str, password: str) -> User | None:
        with self._lock:
            row = self._db.execute("SELECT name, role, municipality, school, password FROM users "
                                   "WHERE name = ?", (name,)).fetchone()
        if row is None:
            verify_password(password, _dummy_hash())
            return None
        return _user(row[:4]) if verify_password(password, row[4]) else None

    # API tokens

    def create_token(self, name: str, label: str, now: datetime) -> str:
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self._lock:
            try:
                self._db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?)",
                                 (token_id, name, label, _sha256(secret), now.isoformat()))
            except sqlite3.IntegrityError as exc:
                raise UserStoreError(f"no user {name!r}") from exc
        return f"lw_{token_id}_{secret}"

    def tokens(self, name: str | None = None) -> list[TokenInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, user, label, created_at FROM tokens WHERE ? IS NULL OR user = ? "
                "ORDER BY created_at", (name, name)).fetchall()
        return [TokenInfo(*r) for r in rows]

    def revoke_token(self, token_id: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount > 0

    def user_for_token(self, token: str) -> User | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "lw":
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT u.name, u.role, u.municipality, u.school, t.secret_sha256 FROM tokens t "
                "JOIN users u ON u.name = t.user WHERE t.id = ?", (parts[1],)).fetchone()
        if row is None or not hmac.compare_digest(row[4], _sha256(parts[2])):
            return None
        return _user(row[:4])

    # login sessions (server-side; the cookie holds only a random id)

    def create_session(self, name: str, now: datetime, lifetime: timedelta) -> tuple[str, str]:
        """Returns (session id for the cookie, CSRF token)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires_at < ?", (now.isoformat(),))
            self._db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                             (_sha256(session_id), name, csrf, (now + lifetime).isoformat()))
        return session_id, csrf

    def session(self, session_id: str, now: datetime) -> SessionRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT u.name, u.role, u.municipality, u.school, s.csrf, s.expires_at "
                "FROM sessions s JOIN users u ON u.name = s.user WHERE s.id_sha256 = ?",
                (_sha256(session_id),)).fetchone()
        if row is None:
            return None
        expires = datetime.fromisoformat(row[5])
        if expires <= now:
            return None
        return SessionRecord(_user(row[:4]), row[4], expires)

    def end_session(self, session_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE id_sha256 = ?", (_sha256(session_id),))

    def close(self) -> None:
        with self._lock:
            self._db.close()
