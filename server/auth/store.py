"""Users, API tokens and login sessions in the store (``server/store``: tables ``users``,
``api_tokens``, ``login_sessions``).

Secrets are stored hashed only: passwords with scrypt, API tokens and session ids with SHA-256
(they are 256-bit random values, so a fast hash suffices). A token is shown once, when created:
``lw_<id>_<secret>``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..store.schema_auth import NAME_MAX, api_tokens, login_sessions, users
from .model import Role, User
from .passwords import hash_password, verify_password

__all__ = ["MIN_PASSWORD", "SessionRecord", "TokenInfo", "UserStore", "UserStoreError"]

MIN_PASSWORD: Final = 10
_USER: Final = (users.c.name, users.c.role, users.c.municipality, users.c.school)


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


def _user(row: Sequence[Any]) -> User:
    return User(row[0], Role(row[1]), row[2], row[3])


def _check_password_length(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserStoreError(f"a password needs at least {MIN_PASSWORD} characters")


class UserStore:
    """Each method is one short transaction on a connection of its own: safe from any thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # users

    def add_user(self, user: User, password: str, now: datetime) -> None:
        if not 0 < len(user.name) <= NAME_MAX:
            raise UserStoreError(f"a user name has 1 to {NAME_MAX} characters")
        _check_password_length(password)
        hashed = hash_password(password)
        try:
            with self._engine.begin() as db:
                db.execute(insert(users).values(
                    name=user.name, role=user.role.value, municipality=user.municipality,
                    school=user.school, password=hashed, created_at=now))
        except IntegrityError as exc:
            raise UserStoreError(f"user {user.name!r} exists") from exc

    def set_password(self, name: str, password: str) -> None:
        """A new password ends the user's sessions (whoever knew the old one is logged out)."""
        _check_password_length(password)
        hashed = hash_password(password)
        with self._engine.begin() as db:
            changed = db.execute(update(users).where(users.c.name == name).values(password=hashed))
            if changed.rowcount == 0:
                raise UserStoreError(f"no user {name!r}")
            db.execute(delete(login_sessions).where(login_sessions.c.user_name == name))

    def remove_user(self, name: str) -> bool:
        """With the user's tokens and sessions (ON DELETE CASCADE)."""
        with self._engine.begin() as db:
            return db.execute(delete(users).where(users.c.name == name)).rowcount > 0

    def users(self) -> list[User]:
        with self._engine.begin() as db:
            return [_user(row) for row in db.execute(select(*_USER).order_by(users.c.name))]

    def get(self, name: str) -> User | None:
        with self._engine.begin() as db:
            row = db.execute(select(*_USER).where(users.c.name == name)).first()
        return _user(row) if row is not None else None

    def check_password(self, name: str, password: str) -> User | None:
        with self._engine.begin() as db:
            row = db.execute(select(*_USER, users.c.password).where(users.c.name == name)).first()
        if row is None:
            verify_password(password, _dummy_hash())
            return None
        return _user(row) if verify_password(password, row.password) else None

    # API tokens

    def create_token(self, name: str, label: str, now: datetime) -> str:
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        try:
            with self._engine.begin() as db:
                db.execute(insert(api_tokens).values(
                    id=token_id, user_name=name, label=label, secret_sha256=_sha256(secret),
                    created_at=now))
        except IntegrityError as exc:  # the foreign key: no such user
            raise UserStoreError(f"no user {name!r}") from exc
        return f"lw_{token_id}_{secret}"

    def tokens(self, name: str | None = None) -> list[TokenInfo]:
        t = api_tokens.c
        query = select(t.id, t.user_name, t.label, t.created_at).order_by(t.created_at, t.id)
        if name is not None:
            query = query.where(t.user_name == name)
        with self._engine.begin() as db:
            rows = db.execute(query).all()
        return [TokenInfo(r.id, r.user_name, r.label, r.created_at.isoformat()) for r in rows]

    def revoke_token(self, token_id: str) -> bool:
        with self._engine.begin() as db:
            return db.execute(delete(api_tokens).where(api_tokens.c.id == token_id)).rowcount > 0

    def user_for_token(self, token: str) -> User | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "lw":
            return None
        query = (select(*_USER, api_tokens.c.secret_sha256)
                 .join(api_tokens, api_tokens.c.user_name == users.c.name)
                 .where(api_tokens.c.id == parts[1]))
        with self._engine.begin() as db:
            row = db.execute(query).first()
        if row is None or not hmac.compare_digest(row.secret_sha256, _sha256(parts[2])):
            return None
        return _user(row)

    # login sessions (server-side; the cookie holds only a random id)

    def create_session(self, name: str, now: datetime, lifetime: timedelta) -> tuple[str, str]:
        """Returns (session id for the cookie, CSRF token). Sessions expired by now are deleted
        here: a login is rare enough, and no sweeper is needed."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self._engine.begin() as db:
            db.execute(delete(login_sessions).where(login_sessions.c.expires_at < now))
            db.execute(insert(login_sessions).values(
                id_sha256=_sha256(session_id), user_name=name, csrf=csrf, expires_at=now + lifetime))
        return session_id, csrf

    def session(self, session_id: str, now: datetime) -> SessionRecord | None:
        s = login_sessions.c
        query = (select(*_USER, s.csrf, s.expires_at)
                 .join(login_sessions, s.user_name == users.c.name)
                 .where(s.id_sha256 == _sha256(session_id)))
        with self._engine.begin() as db:
            row = db.execute(query).first()
        if row is None or row.expires_at <= now:
            return None
        return SessionRecord(_user(row), row.csrf, row.expires_at)

    def end_session(self, session_id: str) -> None:
        with self._engine.begin() as db:
            db.execute(delete(login_sessions).where(login_sessions.c.id_sha256 == _sha256(session_id)))
