"""Users, API tokens and login sessions in the store (issue 18): what survives a restart, what goes
with a user, when a session ends; and an installation from before the store, whose
``users.sqlite`` the collector or the CLI takes over once. On SQLite or, with
LADEWACHE_TEST_STORE=postgresql, on PostgreSQL (tests/support/store.py)."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import server.auth.store as auth_store
from server.app import make_auth
from server.auth import (
    LEGACY_USERS_FILE,
    Role,
    TakeoverError,
    User,
    UserStore,
    UserStoreError,
    take_over_users,
)
from server.auth.passwords import hash_password
from server.cli import main
from server.config import load_server_settings
from tests.support.store import new_store, store_at

pytestmark = pytest.mark.store

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
PASSWORD = "a-long-password"
HOUR = timedelta(hours=1)


@pytest.fixture
def store() -> UserStore:
    users = UserStore(new_store())
    users.add_user(User("admin", Role.ADMIN), PASSWORD, NOW)
    users.add_user(User("tech", Role.TECHNICIAN, municipality="nord"), PASSWORD, NOW)
    return users


# -- the store -----------------------------------------------------------------------------------

def test_users_tokens_and_sessions_survive_a_restart(tmp_path: Path) -> None:
    first = UserStore(store_at(tmp_path))
    first.add_user(User("lehrerin", Role.VIEWER, school="gs-park"), PASSWORD, NOW)
    token = first.create_token("lehrerin", "script", NOW)
    session_id, csrf = first.create_session("lehrerin", NOW, HOUR)

    again = UserStore(store_at(tmp_path))
    assert again.users() == [User("lehrerin", Role.VIEWER, school="gs-park")]
    assert again.check_password("lehrerin", PASSWORD) == User("lehrerin", Role.VIEWER, school="gs-park")
    assert again.user_for_token(token) == User("lehrerin", Role.VIEWER, school="gs-park")
    record = again.session(session_id, NOW + timedelta(minutes=59))
    assert record is not None
    assert (record.user.name, record.csrf, record.expires_at) == ("lehrerin", csrf, NOW + HOUR)
    [info] = again.tokens()
    assert (info.user, info.label, info.created_at) == ("lehrerin", "script", NOW.isoformat())


def test_refusals_keep_their_messages(store: UserStore) -> None:
    with pytest.raises(UserStoreError, match="user 'admin' exists"):
        store.add_user(User("admin", Role.VIEWER, school="gs-park"), PASSWORD, NOW)
    with pytest.raises(UserStoreError, match="at least 10 characters"):
        store.add_user(User("kurz", Role.ADMIN), "short", NOW)
    with pytest.raises(UserStoreError, match="at least 10 characters"):
        store.set_password("admin", "short")
    with pytest.raises(UserStoreError, match="no user 'nobody'"):
        store.set_password("nobody", PASSWORD)
    with pytest.raises(UserStoreError, match="no user 'nobody'"):
        store.create_token("nobody", "script", NOW)
    # PostgreSQL would refuse a longer name with a database error; both say why instead.
    with pytest.raises(UserStoreError, match="1 to 100 characters"):
        store.add_user(User("x" * 101, Role.ADMIN), PASSWORD, NOW)
    assert [u.name for u in store.users()] == ["admin", "tech"]


def test_a_token_needs_its_secret_and_ends_when_revoked(store: UserStore) -> None:
    token = store.create_token("tech", "nightly", NOW)
    _, token_id, secret = token.split("_", 2)
    assert store.user_for_token(token) == User("tech", Role.TECHNICIAN, municipality="nord")
    assert store.user_for_token(f"lw_{token_id}_{secret[:-1]}x") is None
    assert store.user_for_token(f"xx_{token_id}_{secret}") is None
    assert store.tokens("admin") == []
    assert store.revoke_token(token_id)
    assert not store.revoke_token(token_id)
    assert store.user_for_token(token) is None


def test_a_session_ends_when_it_expires_on_logout_and_with_a_new_password(store: UserStore) -> None:
    expiring, _ = store.create_session("admin", NOW, HOUR)
    assert store.session(expiring, NOW + HOUR - timedelta(seconds=1)) is not None
    assert store.session(expiring, NOW + HOUR) is None

    ended, _ = store.create_session("admin", NOW, HOUR)
    store.end_session(ended)
    assert store.session(ended, NOW) is None

    other, _ = store.create_session("tech", NOW, HOUR)
    mine, _ = store.create_session("admin", NOW, HOUR)
    store.set_password("admin", "another-long-password")
    assert store.session(mine, NOW) is None
    assert store.session(other, NOW) is not None  # only the user's own sessions end
    assert store.check_password("admin", PASSWORD) is None
    assert store.check_password("admin", "another-long-password") is not None


def test_removing_a_user_takes_their_tokens_and_sessions(store: UserStore) -> None:
    token = store.create_token("tech", "script", NOW)
    session_id, _ = store.create_session("tech", NOW, HOUR)
    kept = store.create_token("admin", "script", NOW)
    assert store.remove_user("tech")
    assert not store.remove_user("tech")
    assert store.user_for_token(token) is None
    assert store.session(session_id, NOW) is None
    assert [t.user for t in store.tokens()] == ["admin"]
    assert store.user_for_token(kept) is not None
    # The name is free again, and the old token does not come back with it.
    store.add_user(User("tech", Role.ADMIN), PASSWORD, NOW)
    assert store.user_for_token(token) is None


def test_an_unknown_name_is_checked_against_a_hash_as_well(
        store: UserStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer for a name that does not exist costs a password check too: its timing does not
    tell which names exist."""
    checked: list[str] = []
    real = auth_store.verify_password

    def verify(password: str, stored: str) -> bool:
        checked.append(stored)
        return real(password, stored)

    monkeypatch.setattr(auth_store, "verify_password", verify)
    assert store.check_password("nobody", PASSWORD) is None
    assert store.check_password("admin", "wrong-password") is None
    assert len(checked) == 2
    assert all(h.startswith("scrypt$") for h in checked)


# -- taking over users.sqlite --------------------------------------------------------------------

# The schema and rows as server/auth/store.py wrote them before the store.
_OLD_SCHEMA = """
CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, municipality TEXT, school TEXT,
                    password TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE tokens (id TEXT PRIMARY KEY,
                     user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                     label TEXT NOT NULL, secret_sha256 TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE sessions (id_sha256 TEXT PRIMARY KEY,
                       user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                       csrf TEXT NOT NULL, expires_at TEXT NOT NULL);
"""
OLD_TOKEN = "lw_0123456789ab_the-old-secret"
OLD_SESSION = "the-old-session-id"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _old_file(state_dir: Path) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LEGACY_USERS_FILE
    db = sqlite3.connect(path)
    db.executescript(_OLD_SCHEMA)
    db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", [
        ("chefin", "admin", None, None, hash_password("the-old-password"), NOW.isoformat()),
        ("lehrerin", "viewer", None, "gs-park", hash_password("the-old-password"),
         "2026-01-05T09:30:00+01:00")])
    db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?)",
               ("0123456789ab", "chefin", "nightly", _sha256("the-old-secret"), NOW.isoformat()))
    db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
               (_sha256(OLD_SESSION), "lehrerin", "the-csrf", (NOW + HOUR).isoformat()))
    db.commit()
    db.close()
    return path


def test_users_sqlite_is_taken_over_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = _old_file(tmp_path)
    engine = store_at(tmp_path)
    with caplog.at_level(logging.INFO, logger="server.auth.takeover"):
        assert take_over_users(engine, tmp_path) == 2
    assert "took 2 user(s), 1 API token(s) and 1 login session(s)" in caplog.text
    assert not old.exists()
    assert (tmp_path / "users.sqlite.imported").exists()

    store = UserStore(engine)
    assert store.users() == [User("chefin", Role.ADMIN), User("lehrerin", Role.VIEWER, school="gs-park")]
    assert store.check_password("chefin", "the-old-password") == User("chefin", Role.ADMIN)
    assert store.user_for_token(OLD_TOKEN) == User("chefin", Role.ADMIN)
    [info] = store.tokens()
    assert (info.id, info.label, info.created_at) == ("0123456789ab", "nightly", NOW.isoformat())
    record = store.session(OLD_SESSION, NOW)  # still logged in after the upgrade
    assert record is not None
    assert (record.user.name, record.csrf, record.expires_at) == ("lehrerin", "the-csrf", NOW + HOUR)
    assert store.session(OLD_SESSION, NOW + HOUR) is None

    store.remove_user("lehrerin")
    assert take_over_users(engine, tmp_path) == 0  # once: the renamed file is not read again
    assert [u.name for u in store.users()] == ["chefin"]


def test_a_user_made_in_the_store_meanwhile_is_kept(tmp_path: Path) -> None:
    _old_file(tmp_path)
    engine = store_at(tmp_path)
    store = UserStore(engine)
    store.add_user(User("chefin", Role.TECHNICIAN, municipality="nord"), "the-new-password", NOW)
    assert take_over_users(engine, tmp_path) == 1  # lehrerin only
    assert store.get("chefin") == User("chefin", Role.TECHNICIAN, municipality="nord")
    assert store.check_password("chefin", "the-new-password") is not None


def test_a_file_that_is_not_the_old_store_is_left_where_it_was(tmp_path: Path) -> None:
    old = tmp_path / LEGACY_USERS_FILE
    old.write_bytes(b"not a database at all, but long enough to have a header" * 4)
    with pytest.raises(TakeoverError, match=r"cannot take the users over from .*users\.sqlite"):
        take_over_users(store_at(tmp_path), tmp_path)
    assert old.exists()


def test_the_collector_takes_the_old_users_over(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('[state]\ndir = "state"\n', encoding="utf-8")
    _old_file(tmp_path / "state")
    engine = store_at(tmp_path / "state")
    auth = make_auth(load_server_settings(config), lambda: NOW, engine, tmp_path / "state")
    assert auth.store.user_for_token(OLD_TOKEN) == User("chefin", Role.ADMIN)
    assert (tmp_path / "state" / "users.sqlite.imported").exists()


def test_the_cli_takes_the_old_users_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "server.toml"
    config.write_text('[state]\ndir = "state"\n', encoding="utf-8")
    _old_file(tmp_path / "state")
    assert main(["user", "list", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["chefin\tadmin\t\t0123456789ab (nightly)", "lehrerin\tviewer\tgs-park\t"]
    assert not (tmp_path / "state" / LEGACY_USERS_FILE).exists()
    # … and the collector, started later, finds them in the store.
    auth = make_auth(load_server_settings(config), lambda: NOW, store_at(tmp_path / "state"),
                     tmp_path / "state")
    assert auth.store.check_password("lehrerin", "the-old-password") is not None
