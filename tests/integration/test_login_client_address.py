"""Which client address the login limits count (issue 15), at a real ``cabinet-server run``: the TCP
peer, unless ``[http] trusted_proxies`` names the proxy in front. An X-Forwarded-For header from
anyone else is ignored, so it cannot hand each guess a fresh address."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api_auth import ADMIN, ADMIN_PASSWORD, admin_token
from tests.support.procs import ManagedProcess, console_script
from tests.support.services import Broker

pytestmark = pytest.mark.integration


@pytest.fixture
def start_server(tmp_path: Path, broker: Broker) -> Iterator[Callable[[str], str]]:
    """``start(http_extra)``: a server with these extra ``[http]`` lines; returns its URL."""
    started: list[ManagedProcess] = []

    def start(http_extra: str) -> str:
        config = tmp_path / "server.toml"
        config.write_text(
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nclient_id = "login-test"\n'
            f'[http]\nhost = "127.0.0.1"\nport = 0\n{http_extra}\n[state]\ndir = "state"\n'
            '[organisation]\ndistrict = "Kreis"\ndistrict_team = "it"\n'
            '[[organisation.teams]]\nid = "it"\nname = "IT"\n', encoding="utf-8")
        admin_token(tmp_path / "state")
        process = ManagedProcess("server", [console_script("cabinet-server"), "run", "--config",
                                            str(config)])
        started.append(process)
        return process.wait_for_line(lambda ln: ln.startswith("READY")).split("http=", 1)[1]

    yield start
    for process in started:
        process.stop()


def _log_in(http: str, password: str, forwarded_for: str, name: str = ADMIN) -> int:
    """One login in a fresh browser, through a "proxy" that says the client is ``forwarded_for``."""
    headers = {"X-Forwarded-For": forwarded_for}
    with httpx.Client(base_url=http, headers=headers, timeout=10) as client:
        form = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        return client.post("/login", data={"name": name, "password": password,
                                           "csrf": csrf}).status_code


def test_a_forwarded_for_header_is_ignored_unless_its_proxy_is_trusted(
        start_server: Callable[[str], str]) -> None:
    http = start_server("")
    # Password spraying, every guess claiming another address: the server counts them all under
    # 127.0.0.1, and after 30 failures from one address (any names) it pauses that address.
    codes = [_log_in(http, "wrong password", f"192.0.2.{n}", f"user{n}") for n in range(31)]
    assert codes == [401] * 30 + [429]


def test_behind_a_trusted_proxy_each_client_is_counted_by_itself(
        start_server: Callable[[str], str]) -> None:
    http = start_server('trusted_proxies = ["127.0.0.1"]')
    codes = [_log_in(http, "wrong password", "192.0.2.1") for _ in range(6)]
    assert codes == [401] * 5 + [429]
    assert _log_in(http, ADMIN_PASSWORD, "198.51.100.7") == 303  # the same user, elsewhere
