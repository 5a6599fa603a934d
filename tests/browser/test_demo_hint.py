"""One hint of `make demo`, end to end in a real browser (Debian's chromium, driven by Playwright):
start the demo, log in as a user it printed, open the door of the presence cabinet as the banner
says, and watch the alerts page show "Tür steht zu lange offen" and then "behoben" when the door is
closed. The door hint works on every day of the week (the "not returned" hint needs a school day).
Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import re
import signal
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simulators.demo_org import CABINETS, PRESENCE_CABINET, SITE
from tests.browser.conftest import ARTIFACTS
from tests.support.procs import ManagedProcess, console_script

pytestmark = pytest.mark.integration

USER = "technik-musterdorf"  # the municipality technician of the demo's school
DOOR_TEXT = "Tür steht zu lange offen"
# Asks the server for the page every half second, as the browser would, until the alert's row is in
# it (the alerts page does not refresh itself): waiting for the event, never a fixed sleep.
ROW_SHOWN = """async ([url, href, text, state, timeoutMs]) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(url, { credentials: "same-origin" });
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    if ([...page.querySelectorAll(`tr.alert.state-${state}`)].some(
        row => row.querySelector(`a[href="${href}"]`) && row.textContent.includes(text))) return true;
    if (Date.now() > deadline) return false;
    await new Promise(resolve => setTimeout(resolve, 500));
  }
}"""


@dataclass
class RunningDemo:
    http: str
    passwords: dict[str, str]
    controls: dict[str, str]  # cabinet id: sim control URL


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[RunningDemo]:
    process = ManagedProcess("demo", [console_script("cabinet-sim"), "demo", "--workdir", str(tmp_path)])
    try:
        process.wait_for_line(lambda text: text.strip().startswith("simulated time runs"), timeout=60)
        text = process.output()
        http = re.search(r"^  server +(http://\S+)", text, re.M).group(1)  # type: ignore[union-attr]
        passwords = dict(re.findall(r"^ {4}([a-z0-9-]+) / (\S+) {2,}", text, re.M))
        controls = {m[0]: m[1] for m in re.findall(r"\((schrank-\w)\) .* sim control (\S+)/state", text)}
        yield RunningDemo(http, passwords, controls)
    finally:
        process.signal(signal.SIGINT)
        assert process.proc.wait(60) == 0, process.output()


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass


def _door_row(page: Any, http: str, path: str, state: str, timeout_s: float) -> Any:
    """Wait until the page at ``path`` shows the door alert of the presence cabinet in ``state``;
    then show that page and return the alert's row."""
    href = f"/cabinets/{SITE}/{PRESENCE_CABINET.id}"
    shown = page.evaluate(ROW_SHOWN, [path, href, DOOR_TEXT, state, timeout_s * 1000])
    assert shown, f"no {state} door alert of {PRESENCE_CABINET.label} on {path} within {timeout_s} s"
    page.goto(http + path)
    return page.locator(f"tr.alert.state-{state}", has=page.locator(f"a[href='{href}']"),
                        has_text=DOOR_TEXT)


def test_open_door_hint_shows_its_alert_and_its_end(demo: RunningDemo, browser: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(demo.http + "/")
    assert "/login" in page.url
    page.fill("input[name=name]", USER)
    page.fill("input[name=password]", demo.passwords[USER])
    page.click("button[type=submit]")
    page.wait_for_selector("table.overview")
    assert USER in page.inner_text("header")
    assert PRESENCE_CABINET.name in page.inner_text("table.overview")

    _post(f"{demo.controls[PRESENCE_CABINET.id]}/door", {"open": True})  # the banner's door hint
    page.goto(demo.http + "/alerts")
    row = _door_row(page, demo.http, "/alerts", "firing", 60)  # the demo's door_open waits 30 s
    assert row.count() == 1
    assert "aktiv" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "demo-door-open.png"), full_page=True)

    _post(f"{demo.controls[PRESENCE_CABINET.id]}/door", {"open": False})
    row = _door_row(page, demo.http, "/alerts?all=true", "resolved", 20)
    assert row.count() == 1
    assert "behoben" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "demo-door-closed.png"), full_page=True)


ISO_OR_UTC = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\bUTC\b")


def test_no_demo_page_or_csv_shows_an_id_or_a_utc_time(demo: RunningDemo, browser: Any) -> None:
    """Walks what a technician of the demo reads: every page and export, in German and English."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(demo.http + "/login")
    page.fill("input[name=name]", USER)
    page.fill("input[name=password]", demo.passwords[USER])
    page.click("button[type=submit]")
    page.wait_for_selector("table.overview")
    paths = ["/", "/alerts?all=true", f"/schools/{SITE}", "/missing", "/search?q=DEMO",
             *(f"/cabinets/{SITE}/{c.id}" for c in CABINETS),
             f"/cabinets/{SITE}/{PRESENCE_CABINET.id}/slots/1",
             "/inventory", f"/inventory/ipad?tag={PRESENCE_CABINET.asset_tag(1)}",
             f"/inventory/slot?site={SITE}&cabinet={PRESENCE_CABINET.id}&slot=1"]
    ids = [SITE, *(c.id for c in CABINETS)]
    for lang in ("de", "en"):
        for path in paths:
            page.goto(f"{demo.http}{path}{'&' if '?' in path else '?'}lang={lang}")
            text = page.inner_text("body")
            assert not ISO_OR_UTC.search(text), (path, lang, ISO_OR_UTC.search(text))
            shown = [i for i in ids if re.search(rf"(?<![\w/-]){re.escape(i)}(?![\w/-])", text)]
            assert not shown, (path, lang, shown)
        for export in ("inventory", "sessions", "alerts", "missing"):
            response = page.request.get(f"{demo.http}/api/export/{export}.csv?lang={lang}")
            assert response.status == 200, (export, response.status)
            assert not ISO_OR_UTC.search(response.text()), (export, lang)
