"""``cabinet-server user …``: create the first admin, more users, API tokens.

Passwords are read from stdin (``--password-stdin``) or generated and printed once; tokens are
printed once. Both are stored hashed in the store (``ladewache.sqlite3`` in the ``[state] dir``,
or PostgreSQL by URL). API tokens live here too (``user token``, ``user tokens``, ``user
revoke``): a token is a user's, with their role and scope, so there is one place for both.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any, TextIO

from ..clock import utcnow
from ..config import ServerSettings, resolve_path, store_location
from ..store import StoreError, open_store
from .model import Role, User
from .store import UserStore, UserStoreError
from .takeover import TakeoverError, take_over_users

__all__ = ["add_user_commands", "run_user_command"]


def add_user_commands(commands: Any) -> argparse.ArgumentParser:
    user = commands.add_parser("user", help="manage dashboard/API users and API tokens")
    sub = user.add_subparsers(dest="user_command", required=True)
    add = sub.add_parser("add", help="create a user (the first one: --role admin)")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], required=True,
                     help="admin (district), technician (one municipality), viewer (one school)")
    add.add_argument("--municipality", help="the technician's municipality id")
    add.add_argument("--school", help="the viewer's school site id")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from stdin (default: generate and print one)")
    passwd = sub.add_parser("passwd", help="set a new password (ends the user's sessions)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    remove = sub.add_parser("remove", help="delete a user with their tokens and sessions")
    remove.add_argument("name")
    listing = sub.add_parser("list", help="list users and their API tokens (ids only)")
    token = sub.add_parser("token", help="create an API token for scripts (the user's role and "
                                          "scope); only the token on stdout, printed once")
    token.add_argument("name")
    token.add_argument("--label", default="script", help="what the token is for")
    tokens = sub.add_parser("tokens", help="list API tokens: id, user, label, created (no secrets)")
    tokens.add_argument("name", nargs="?", help="only this user's")
    revoke = sub.add_parser("revoke", help="revoke an API token by its id (from `user tokens`)")
    revoke.add_argument("token_id")
    for leaf in (add, passwd, remove, listing, token, tokens, revoke):
        leaf.add_argument("--config", type=Path, default=None,
                          help="the server's TOML config (its [state] dir holds the users)")
    return user


def _password(from_stdin: bool, out: TextIO) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = secrets.token_urlsafe(12)
    print(f"password: {password}", file=out)
    return password


def _check_scope(user: User, settings: ServerSettings) -> None:
    org = settings.organisation
    if user.municipality is not None and user.municipality not in {m.id for m in org.municipalities}:
        raise UserStoreError(f"no municipality {user.municipality!r} in [organisation]")
    if user.school is not None and org.school(user.school) is None:
        raise UserStoreError(f"no school {user.school!r} in [organisation]")


def run_user_command(args: argparse.Namespace, settings: ServerSettings, out: TextIO) -> int:
    if settings.state.dir is None and settings.state.url is None:
        print("cabinet-server: users need a [state] dir (or [state] url) in the config",
              file=sys.stderr)
        return 2
    state_dir = resolve_path(settings, settings.state.dir) if settings.state.dir is not None else None
    location = store_location(settings)
    try:
        engine = open_store(location)
    except StoreError as exc:
        print(f"cabinet-server: {exc}", file=sys.stderr)
        return 2
    try:
        if state_dir is not None:  # after an upgrade the CLI may run before the collector
            take_over_users(engine, state_dir)
        return _run(args, settings, UserStore(engine), out)
    except (TakeoverError, UserStoreError, ValueError) as exc:
        print(f"cabinet-server: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def _run(args: argparse.Namespace, settings: ServerSettings, store: UserStore, out: TextIO) -> int:
    command = args.user_command
    if command == "add":
        role = Role(args.role)
        user = User(args.name, role, args.municipality if role is Role.TECHNICIAN else None,
                    args.school if role is Role.VIEWER else None)
        _check_scope(user, settings)
        store.add_user(user, _password(args.password_stdin, out), utcnow())
        print(f"user {user.name} ({role.value}) created", file=out)
    elif command == "passwd":
        store.set_password(args.name, _password(args.password_stdin, out))
        print(f"password of {args.name} changed", file=out)
    elif command == "remove":
        if not store.remove_user(args.name):
            raise UserStoreError(f"no user {args.name!r}")
        print(f"user {args.name} removed", file=out)
    elif command == "list":
        for user in store.users():
            where = user.municipality or user.school or ""
            tokens = ", ".join(f"{t.id} ({t.label})" for t in store.tokens(user.name))
            print(f"{user.name}\t{user.role.value}\t{where}\t{tokens}", file=out)
    elif command == "token":
        token = store.create_token(args.name, args.label, utcnow())
        print(token, file=out)  # alone on stdout: TOKEN=$(cabinet-server user token …)
        token_id = token.split("_", 2)[1]
        print(f"API token {token_id} of {args.name} ({args.label}), shown only now; send it as "
              f"'Authorization: Bearer <token>'; revoke: cabinet-server user revoke {token_id}",
              file=sys.stderr)
    elif command == "tokens":
        if args.name is not None and store.get(args.name) is None:
            raise UserStoreError(f"no user {args.name!r}")
        for info in store.tokens(args.name):
            print(f"{info.id}\t{info.user}\t{info.label}\t{info.created_at}", file=out)
    elif command == "revoke":
        if not store.revoke_token(args.token_id):
            raise UserStoreError(f"no token {args.token_id!r}")
        print(f"token {args.token_id} revoked", file=out)
    return 0
