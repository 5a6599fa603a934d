"""The overview refreshes itself (issue 15: ``/?partial=1`` used to answer 500, so it never did): a
real server fed over Mosquitto, Debian's chromium on its overview. The cabinet changes at the
server; the page's row follows without a reload. The page's timers run on Playwright's fake clock,
so the test moves time on by one refresh interval instead of waiting for it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cabinet_agent.common.protocol import AgentStatus, Channel, StatusMessage, encode, topic_for
from tests.browser.conftest import ARTIFACTS
from tests.support.api_auth import ADMIN, ADMIN_PASSWORD, admin_token, api_get
from tests.support.procs import ManagedProcess, console_script, wait_until
from tests.support.services import Broker

pytestmark = pytest.mark.integration

SITE, CABINET = "gs-park", "k1"
ROW = f"tr[data-cabinet='{SITE}/{CABINET}']"
REFRESH_MS = 5000  # base.html: data-live="5000"


@pytest.fixture
def server(tmp_path: Path, broker: Broker) -> Iterator[tuple[str, str]]:
    config = tmp_path / "server.toml"
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nclient_id = "web-live-test"\n'
        '[http]\nhost = "127.0.0.1"\nport = 0\n[state]\ndir = "state"\n'
        '[organisation]\ndistrict = "Landkreis Musterland"\ndistrict_team = "it"\n'
        '[[organisation.teams]]\nid = "it"\nname = "Schul-IT"\n'
        '[[organisation.municipalities]]\nid = "musterdorf"\nname = "Musterdorf"\n'
        '[[organisation.schools]]\nsite = "gs-park"\nname = "Grundschule am Park"\n'
        'municipality = "musterdorf"\n'
        '[[organisation.cabinets]]\nschool = "gs-park"\nid = "k1"\nname = "Raum 12"\n',
        encoding="utf-8")
    token = admin_token(tmp_path / "state")
    process = ManagedProcess("server", [console_script("cabinet-server"), "run", "--config",
                                        str(config)])
    try:
        http = process.wait_for_line(lambda ln: ln.startswith("READY")).split("http=", 1)[1]
        yield http, token
    finally:
        process.stop()


@pytest.fixture
def agent_status(broker: Broker) -> Iterator[Callable[[AgentStatus], None]]:
    """Publish the cabinet's status as its agent would."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    seq = iter(range(1_000_000))

    def send(status: AgentStatus) -> None:
        wait_until(client.is_connected, 20, "the test publisher connected")
        message = StatusMessage(v=1, site=SITE, cabinet=CABINET, boot_id="e" * 32, seq=next(seq),
                                ts=datetime.now(UTC), clock_synced=True, status=status)
        client.publish(topic_for(SITE, CABINET, Channel.STATUS), encode(message), qos=1,
                       retain=True).wait_for_publish(timeout=10)

    yield send
    client.disconnect()
    client.loop_stop()


def _status_at_server(http: str, token: str) -> str | None:
    cabinets = api_get(f"{http}/api/fleet", token)["cabinets"]
    return next((c["status"] for c in cabinets if c["cabinet"] == CABINET), None)


def test_the_overview_follows_the_fleet_without_a_reload(
        server: tuple[str, str], agent_status: Callable[[AgentStatus], None], browser: Any) -> None:
    http, token = server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.clock.install()  # the page's setInterval runs when the test says so
    navigations: list[str] = []
    page.goto(http + "/login")
    page.fill("input[name=name]", ADMIN)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("table.overview")
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate("window.loadedOnce = true")  # gone if the page were reloaded
    assert page.locator(f"{ROW} .badge").get_attribute("class") == "badge cs-never"
    assert page.locator("tr.district td").first.inner_text() == "0/1"

    for status, shown, online in ((AgentStatus.ONLINE, "online", "1/1"),
                                  (AgentStatus.STOPPED, "gestoppt", "0/1")):
        agent_status(status)
        wanted = status.value
        wait_until(lambda: _status_at_server(http, token) == wanted,  # noqa: B023 (called here)
                   30, f"the cabinet {wanted} at the server")
        page.clock.run_for(REFRESH_MS)  # one refresh interval
        page.wait_for_selector(f"{ROW} .badge.cs-{status.value}", timeout=10_000)
        assert page.locator(f"{ROW} .badge").inner_text() == shown
        assert page.locator("tr.district td").first.inner_text() == online

    assert page.evaluate("window.loadedOnce") is True
    assert navigations == []
    assert page.locator("#live").get_attribute("data-updated")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-live-refresh.png"), full_page=True)
