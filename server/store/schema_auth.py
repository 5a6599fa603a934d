"""The auth tables of the store: users, their API tokens and their login sessions
(``server/auth/store.py``). Secrets are stored hashed only; a user's tokens and sessions go with
the user (ON DELETE CASCADE)."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table, Text

from .base import UtcDateTime, metadata

__all__ = ["NAME_MAX", "api_tokens", "login_sessions", "metadata", "users"]

NAME_MAX = 100  # a user name, as the inventory's ``updated_by`` keeps it

users = Table(
    "users", metadata,
    Column("name", String(NAME_MAX), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("municipality", String(64), nullable=True),  # a technician's; ids are ≤ 64 (org.py)
    Column("school", String(64), nullable=True),  # a school viewer's site
    Column("password", Text, nullable=False),  # scrypt$n$r$p$salt$hash (server/auth/passwords.py)
    Column("created_at", UtcDateTime(), nullable=False),
)

# ``lw_<id>_<secret>``: the id finds the row, the secret's SHA-256 is compared in constant time.
api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(32), primary_key=True),
    Column("user_name", String(NAME_MAX), ForeignKey("users.name", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("label", Text, nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# The cookie holds a random id; only its SHA-256 is here, so a copy of the store logs nobody in.
login_sessions = Table(
    "login_sessions", metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("user_name", String(NAME_MAX), ForeignKey("users.name", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),  # expired ones are deleted
)
