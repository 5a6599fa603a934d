"""API credentials for integration tests: an admin and a token in the server's [state] dir."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.auth import Role, User, UserStore

from .store import store_at

ADMIN, ADMIN_PASSWORD = "test-admin", "integration-test-password"


@contextmanager
def user_store(state_dir: Path) -> Iterator[UserStore]:
    """The users of a collector with ``[state] dir = state_dir``: its store (``store_at``: the file
    in the dir, or the test's PostgreSQL), shared with it while it runs."""
    engine = store_at(state_dir)
    try:
        yield UserStore(engine)
    finally:
        engine.dispose()


def admin_token(state_dir: Path, name: str = ADMIN) -> str:
    """Create (once) an admin in ``state_dir``'s store and return a fresh API token."""
    with user_store(state_dir) as store:
        now = datetime.now(UTC)
        if store.get(name) is None:
            store.add_user(User(name, Role.ADMIN), ADMIN_PASSWORD, now)
        return store.create_token(name, "integration test", now)


def api_get(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def api_post(url: str, token: str, body: Any) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def place_ipad(base_url: str, token: str, asset_tag: str, site: str, cabinet: str,
               slot: int) -> Any:
    """Put an iPad in a slot through the API, as a technician would (the inventory is the home
    of asset tags: agents carry none)."""
    return api_post(f"{base_url}/api/inventory/place", token,
                    {"asset_tag": asset_tag, "site": site, "cabinet": cabinet, "slot": slot,
                     "create": True})
