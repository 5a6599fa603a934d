"""API credentials for integration tests: an admin and a token in the server's [state] dir."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.auth import USERS_FILE, Role, User, UserStore

ADMIN, ADMIN_PASSWORD = "test-admin", "integration-test-password"


def admin_token(state_dir: Path, name: str = ADMIN) -> str:
    """Create (once) an admin in ``state_dir``'s user store and return a fresh API token."""
    store = UserStore(state_dir / USERS_FILE)
    try:
        now = datetime.now(UTC)
        if store.get(name) is None:
            store.add_user(User(name, Role.ADMIN), ADMIN_PASSWORD, now)
        return store.create_token(name, "integration test", now)
    finally:
        store.close()


def api_get(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())
