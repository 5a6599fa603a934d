"""The API as README.md tells a district IT lead to use it, on a network without internet: an admin
token from `cabinet-server user token`, `GET /api/fleet` with it, and /docs rendered by a real
browser (Debian's chromium) that may reach nothing but this server, with its "Authorize" button for
the token. Screenshot in test-artifacts/."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.support.procs import ManagedProcess, console_script
from tests.support.services import Broker

pytestmark = pytest.mark.integration


def _fleet_status(http: str, token: str) -> int:
    request = urllib.request.Request(f"{http}/api/fleet", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_token_from_the_cli_and_docs_without_internet(tmp_path: Path, broker: Broker,
                                                      browser: Any) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nclient_id = "docs-test"\n'
                      '[http]\nhost = "127.0.0.1"\nport = 0\n[state]\ndir = "state"\n',
                      encoding="utf-8")
    cli = [console_script("cabinet-server"), "user"]
    subprocess.run([*cli, "add", "chefin", "--role", "admin", "--config", str(config)],
                   check=True, capture_output=True, timeout=60)
    token = subprocess.run([*cli, "token", "chefin", "--label", "docs-test", "--config", str(config)],
                           check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    server = ManagedProcess("server", [console_script("cabinet-server"), "run", "--config", str(config)])
    try:
        http = server.wait_for_line(lambda ln: ln.startswith("READY")).split("http=", 1)[1]
        assert _fleet_status(http, token) == 200
        assert _fleet_status(http, "lw_000000000000_wrong") == 401

        page = browser.new_page()
        outside: list[str] = []
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))

        def only_this_server(route: Any) -> None:
            if route.request.url.startswith(f"{http}/"):
                route.continue_()
            else:  # as on a school network without internet
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_this_server)
        page.goto(f"{http}/docs")
        page.locator(".opblock-summary-path", has_text="/api/fleet").first.wait_for(timeout=20_000)
        # the bearer scheme in /openapi.json: "Authorize" takes the token, a lock on each route
        authorize = page.locator(".scheme-container button.authorize")
        authorize.wait_for(timeout=20_000)
        assert "Authorize" in authorize.inner_text()
        fleet_route = page.locator(".opblock", has=page.locator(".opblock-summary-path",
                                                                has_text="/api/fleet")).first
        assert fleet_route.locator("button.authorization__btn").count() == 1
        healthz = page.locator(".opblock", has=page.locator(".opblock-summary-path",
                                                            has_text="/healthz")).first
        assert healthz.locator("button.authorization__btn").count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "api-docs-offline.png"))
        assert outside == []
        assert problems == []  # a CSP violation would show here
    finally:
        server.stop()
