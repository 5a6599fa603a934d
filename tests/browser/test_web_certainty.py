"""Certainty on a phone (issue 14): a real server fed protocol-revision-2 messages over Mosquitto
(a power-only cabinet with a charged slot not confirmed since a door opening), seen in Debian's
chromium at 375 px: the slot's mark, "nicht bestätigt seit …", the power-only notice and the
"Nicht bestätigt" list, with no horizontal overflow. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Certainty,
    Channel,
    DoorState,
    MainsState,
    Sensing,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    encode,
    topic_for,
)
from tests.browser.conftest import ARTIFACTS
from tests.support.api_auth import ADMIN, ADMIN_PASSWORD, admin_token, api_get
from tests.support.procs import ManagedProcess, console_script, wait_until
from tests.support.services import Broker

pytestmark = pytest.mark.integration

SITE, CABINET = "gs-park", "k1"
SINCE_RE = r"nicht bestätigt seit (Mo|Di|Mi|Do|Fr|Sa|So) \d\d:\d\d"


@pytest.fixture
def server(tmp_path: Path, broker: Broker) -> Iterator[tuple[str, str]]:
    config = tmp_path / "server.toml"
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nclient_id = "web-cert-test"\n'
        '[http]\nhost = "127.0.0.1"\nport = 0\n[state]\ndir = "state"\n'
        '[organisation]\ndistrict = "Landkreis Musterland"\ndistrict_team = "it"\n'
        '[[organisation.teams]]\nid = "it"\nname = "Schul-IT"\n'
        '[[organisation.municipalities]]\nid = "musterdorf"\nname = "Musterdorf"\n'
        '[[organisation.schools]]\nsite = "gs-park"\nname = "Grundschule am Park"\n'
        'municipality = "musterdorf"\n'
        '[[organisation.cabinets]]\nschool = "gs-park"\nid = "k1"\nname = "Raum 12"\n'
        'slots = { 1 = "GS-PARK-0001", 2 = "GS-PARK-0002" }\n', encoding="utf-8")
    token = admin_token(tmp_path / "state")
    process = ManagedProcess("server", [console_script("cabinet-server"), "run", "--config",
                                        str(config)])
    try:
        http = process.wait_for_line(lambda ln: ln.startswith("READY")).split("http=", 1)[1]
        yield http, token
    finally:
        process.stop()


@pytest.fixture
def publish(broker: Broker) -> Iterator[Callable[[Any], None]]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    seq = iter(range(1_000_000))

    def send(build: Any) -> None:
        wait_until(client.is_connected, 20, "the test publisher connected")
        message = build({"v": 1, "site": SITE, "cabinet": CABINET, "boot_id": "f" * 32,
                         "seq": next(seq), "ts": datetime.now(UTC), "clock_synced": True})
        info = client.publish(topic_for(SITE, CABINET, Channel(message.type)), encode(message),
                              qos=1, retain=True)
        info.wait_for_publish(timeout=10)

    yield send
    client.disconnect()
    client.loop_stop()


def _power_only_cabinet(publish: Callable[[Any], None]) -> None:
    now = datetime.now(UTC)
    since, drew, unseen = now - timedelta(hours=20), now - timedelta(hours=19), now - timedelta(hours=3)
    states = [(SlotState.CHARGED, Certainty.PROBABLE, drew, unseen),
              (SlotState.CHARGED, Certainty.CERTAIN, now - timedelta(minutes=5), None),
              (SlotState.EMPTY, Certainty.PROBABLE, drew, unseen),
              (SlotState.UNKNOWN, Certainty.CANNOT_TELL, None, None)]
    states += [(SlotState.CHARGING, Certainty.CERTAIN, now, None)] * 12  # since: an hour
    publish(lambda env: StatusMessage(**env, status=AgentStatus.ONLINE))
    publish(lambda env: BirthMessage(
        **env, agent_version="0.2.0", config_hash="0123abcd", cabinet_model="ladewache-16",
        slot_count=16, slots=[SlotInfo(slot=n) for n in range(1, 17)], poll_interval_s=1.0,
        telemetry_interval_s=60.0,
        sensing=Sensing(slot_power=True, presence=False, door=True, evidence_window_s=432000.0)))
    publish(lambda env: StateMessage(
        **env, slots=[SlotSnapshot(slot=n, state=st, power_w=15.0 if st is SlotState.CHARGING
                                   else 0.0, certainty=c, last_draw_at=d,
                                   since=now - timedelta(hours=1) if st is SlotState.CHARGING
                                   else since,
                                   unseen_since=u)
                      for n, (st, c, d, u) in enumerate(states, 1)],
        door=DoorState.CLOSED, temperature_c=21.0, mains=MainsState.ON, devices=[]))


def _overflow(page: Any, selector: str) -> dict[str, float]:
    return page.eval_on_selector(selector, """grid => ({
        scroll: grid.scrollWidth, client: grid.clientWidth,
        right: Math.max(...[...grid.children].map(c => c.getBoundingClientRect().right)),
        page: document.documentElement.scrollWidth, viewport: window.innerWidth})""")


def test_a_probable_slot_on_a_phone(server: tuple[str, str], publish: Callable[[Any], None],
                                    broker: Broker, browser: Any) -> None:
    http, token = server
    _power_only_cabinet(publish)
    wait_until(lambda: any(s["certainty"] == "probable"
                           for c in api_get(f"{http}/api/fleet", token)["cabinets"]
                           for s in c["slots"]), 30, "the probable slot at the server")
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 375, "height": 812}, device_scale_factor=2)
    page.set_default_timeout(15_000)
    page.goto(http + "/login")
    page.fill("input[name=name]", ADMIN)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("table.overview")
    row = page.locator(f"tr[data-cabinet='{SITE}/{CABINET}']")
    assert "nur Strom" in row.inner_text()  # the power-only marker in the overview
    page.screenshot(path=str(ARTIFACTS / "web-certainty-overview-375.png"), full_page=True)

    page.goto(f"{http}/cabinets/{SITE}/{CABINET}")
    page.wait_for_selector(".slots .slot")
    tile = page.locator(".slots .slot[data-slot='1']")
    assert tile.get_attribute("data-certainty") == "probable"
    assert tile.locator(".cert-mark").inner_text() == "≈"
    assert tile.locator(".cert-mark").is_visible()
    assert re.search(SINCE_RE, tile.inner_text().replace("\n", " "))
    assert page.locator(".slots .slot[data-slot='4'] .cert-mark").inner_text() == "?"
    assert page.locator(".slots .slot[data-slot='2'] .cert-mark").count() == 0
    notice = page.locator("p.notice.power-only").inner_text()
    assert "Dieser Schrank misst nur Strom" in notice and "(bis zu 5 Tage)" in notice
    (item,) = page.locator(".unconfirmed-list li").all_inner_texts()
    assert item.startswith("Raum 12 · Fach 1 · GS-PARK-0001") and re.search(SINCE_RE, item)

    page.screenshot(path=str(ARTIFACTS / "web-certainty-cabinet-375.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / "web-certainty-cabinet-375-top.png"))
    page.locator("section.unconfirmed-list").screenshot(
        path=str(ARTIFACTS / "web-certainty-unconfirmed-375.png"))
    sizes = _overflow(page, ".slots")
    assert sizes["scroll"] <= sizes["client"], sizes  # the grid does not scroll sideways
    assert sizes["right"] <= sizes["viewport"], sizes  # no tile leaves the screen
    assert sizes["page"] <= sizes["viewport"], sizes  # nor does the page

    page.click(".slots .slot[data-slot='1']")
    page.wait_for_selector("dd.last-draw")
    assert re.search(r"\d{4}, \d\d:\d\d Uhr", page.inner_text("dd.unseen-since"))
    page.screenshot(path=str(ARTIFACTS / "web-certainty-slot-375.png"), full_page=True)
