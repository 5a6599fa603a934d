"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against a real
server fed by a simulated cabinet, its agent and Mosquitto: log in → overview → cabinet →
acknowledge an alert. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.support.api_auth import ADMIN, ADMIN_PASSWORD, admin_token, api_get
from tests.support.procs import ManagedProcess, console_script, wait_until
from tests.support.services import Broker

pytestmark = pytest.mark.integration

SITE, CABINET = "gs-park", "k1"


@dataclass
class School:
    http: str
    control: str
    token: str


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass


@pytest.fixture
def school(tmp_path: Path, broker: Broker) -> Iterator[School]:
    sim = ManagedProcess("sim", [console_script("cabinet-sim"), "cabinet", "--model", "ladewache-16",
                                 "--modbus-port", "0", "--control-port", "0", "--speed", "1",
                                 "--seed", "3"])
    started = [sim]
    try:
        fields = dict(p.split("=", 1) for p in sim.wait_for_line(lambda ln: ln.startswith("READY"))
                      .split()[1:])
        config = tmp_path / "server.toml"
        config.write_text(
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nclient_id = "web-test"\n'
            '[http]\nhost = "127.0.0.1"\nport = 0\n[state]\ndir = "state"\n'
            "[alerts]\ntick_s = 0.2\nsettle_s = 0\n[alerts.rules.door_open]\npending_s = 0\n"
            '[organisation]\ndistrict = "Landkreis Musterland"\ndistrict_team = "it"\n'
            '[[organisation.teams]]\nid = "it"\nname = "Schul-IT"\n'
            '[[organisation.municipalities]]\nid = "musterdorf"\nname = "Musterdorf"\n'
            '[[organisation.schools]]\nsite = "gs-park"\nname = "Grundschule am Park"\n'
            'municipality = "musterdorf"\n'
            '[[organisation.cabinets]]\nschool = "gs-park"\nid = "k1"\nname = "Raum 12"\n',
            encoding="utf-8")
        token = admin_token(tmp_path / "state")  # also the browser's login (ADMIN)
        server = ManagedProcess("server", [console_script("cabinet-server"), "run", "--config",
                                           str(config)])
        started.append(server)
        http = server.wait_for_line(lambda ln: ln.startswith("READY")).split("http=", 1)[1]
        agent_conf = tmp_path / "agent.toml"
        agent_conf.write_text(
            f'[cabinet]\nsite = "{SITE}"\nid = "{CABINET}"\nmodel = "ladewache-16"\n'
            '[cabinet.asset_tags]\n1 = "GS-PARK-0001"\n2 = "GS-PARK-0002"\n'
            f'[buses.main]\ntransport = "tcp"\nhost = "127.0.0.1"\n'
            f'port = {int(fields["modbus"].rsplit(":", 1)[1])}\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
            "[polling]\ninterval_s = 0.5\ntelemetry_interval_s = 2\n", encoding="utf-8")
        started.append(ManagedProcess("agent", [console_script("cabinet-agent"), "run", "--config",
                                                str(agent_conf)]))
        yield School(http, fields["control"], token)
    finally:
        for process in reversed(started):
            process.stop()


def _door_alert(school: School) -> dict[str, Any] | None:
    alerts = api_get(f"{school.http}/api/alerts?state=firing", school.token)["alerts"]
    return next((a for a in alerts if a["alertname"] == "door_open"), None)


def test_log_in_overview_cabinet_acknowledge(school: School, browser: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    wait_until(lambda: any(c["slots"] for c in api_get(f"{school.http}/api/fleet",
                                                       school.token)["cabinets"]),
               30, "the cabinet's slots at the server")
    _post(f"{school.control}/door", {"open": True})
    alert = wait_until(lambda: _door_alert(school), 30, "a firing door_open alert")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(school.http + "/")
    assert "/login" in page.url
    page.fill("input[name=name]", ADMIN)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("table.overview")
    assert page.locator("tr.municipality th").inner_text() == "Musterdorf"
    assert "Grundschule am Park" in page.inner_text("table.overview")
    assert page.locator("tr.district td.alerting").count() == 1  # the open door
    page.screenshot(path=str(ARTIFACTS / "web-overview.png"), full_page=True)

    page.click("a:has-text('Raum 12')")
    page.wait_for_selector(".slots .slot")
    assert page.locator(".slots .slot").count() == 16
    assert page.locator("dd.door-open").inner_text() == "offen"
    page.screenshot(path=str(ARTIFACTS / "web-cabinet.png"), full_page=True)

    row = page.locator(f"tr[data-fingerprint='{alert['fingerprint']}']")
    row.locator("form.ack-form input[name=comment]").fill("Hausmeister schließt")
    row.locator("form.ack-form button").click()
    page.wait_for_selector("div.ack")
    assert "quittiert von test-admin: Hausmeister schließt" in page.inner_text("div.ack")
    acknowledged = _door_alert(school)
    assert acknowledged is not None and acknowledged["ack"]["by"] == ADMIN
    page.screenshot(path=str(ARTIFACTS / "web-acknowledged.png"), full_page=True)

    # English is one click away, and the page updates itself without a reload
    page.click("a.lang")
    page.wait_for_selector("text=Cabinet")
    page.click(".slots .slot[data-slot='1']")
    page.wait_for_selector("svg.timeline")
    page.screenshot(path=str(ARTIFACTS / "web-slot.png"), full_page=True)
    page.goto(f"{school.http}/cabinets/{SITE}/{CABINET}")
    _post(f"{school.control}/door", {"open": False})
    page.wait_for_selector("dd.door-closed", timeout=20_000)
