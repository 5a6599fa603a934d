"""The "Fehlende iPads" list in Debian's chromium (issue 16, item 3): the dashboard app served by
uvicorn on a free port with the unit tests' fleet and alerts (tests/unit/test_web_missing.py), at
375 px and 1280 px without horizontal overflow, and with print media: no navigation, the school
name and the date in the header, the table's head repeated and no row cut in two. Screenshots and
an A4 PDF go to test-artifacts/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from server.api import create_app
from server.web import Dashboard, install_dashboard
from tests.browser.conftest import ARTIFACTS
from tests.support.procs import wait_until
from tests.unit.test_web_missing import NOW, sources

pytestmark = pytest.mark.integration

OVERFLOW = "document.scrollingElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def served() -> Iterator[tuple[str, str]]:
    dash = Dashboard(sources())
    app = create_app(dash.sources)
    install_dashboard(app, dash)
    token = dash.sources.auth.store.create_token("admin", "browser", NOW)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, name="uvicorn-missing", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 20, "uvicorn started")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(10)


def _page(browser: Any, token: str, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 800},
                                  extra_http_headers={"Authorization": f"Bearer {token}"})
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


@pytest.mark.parametrize("width", [375, 1280])
def test_the_list_fits_the_screen(served: tuple[str, str], browser: Any, width: int) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base, token = served
    page = _page(browser, token, width)
    page.goto(f"{base}/missing")
    page.wait_for_selector("table.missing")
    assert page.locator("section.missing-school").count() == 3
    assert page.evaluate(OVERFLOW), "horizontal overflow"
    row = page.locator("tr[data-cabinet='gs-park/k1'][data-slot='1']")
    assert "PARK-0001" in row.inner_text() and "sicher" in row.inner_text()
    cells = page.evaluate("getComputedStyle(document.querySelector('table.missing td')).display")
    # a phone gets one card per iPad (the column names in the cells), a desktop the table
    assert cells == ("block" if width == 375 else "table-cell")
    page.screenshot(path=str(ARTIFACTS / f"web-missing-{width}.png"), full_page=True)
    page.goto(f"{base}/")
    page.click("a[href='/missing']")
    page.wait_for_selector("table.missing")
    page.context.close()


def test_printed_the_header_names_the_school_and_the_date(served: tuple[str, str],
                                                          browser: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base, token = served
    page = _page(browser, token, 1280)
    page.goto(f"{base}/missing?school=gs-park")
    page.wait_for_selector("table.missing")
    assert page.locator("body > header nav").is_visible()  # on screen: the navigation
    page.emulate_media(media="print")
    assert not page.locator("body > header").is_visible()
    assert not page.locator(".missing-actions").is_visible()
    head = page.locator(".missing-head").inner_text()
    assert "Fehlende iPads – Grundschule am Park" in head
    assert "Stand: Mittwoch, 2. Dezember 2026, 09:00 Uhr" in head
    style = page.evaluate("""() => ({
        head: getComputedStyle(document.querySelector('table.missing thead')).display,
        row: getComputedStyle(document.querySelector('table.missing tbody tr')).breakInside,
    })""")
    assert style == {"head": "table-header-group", "row": "avoid"}
    page.screenshot(path=str(ARTIFACTS / "web-missing-print.png"), full_page=True)
    page.pdf(path=str(ARTIFACTS / "web-missing-a4.pdf"), format="A4")

    page.goto(f"{base}/missing")  # the district: one school a page, each with the date
    page.wait_for_selector("table.missing")
    assert page.evaluate("getComputedStyle(document.querySelectorAll('section.missing-school')[1])"
                         ".breakBefore") == "page"
    heading = page.locator("section.missing-school h2").first.inner_text()
    assert "Grundschule am Park" in heading and "2. Dezember 2026" in heading
    page.context.close()


def test_the_print_view_shows_no_navigation_on_screen(served: tuple[str, str],
                                                      browser: Any) -> None:
    base, token = served
    page = _page(browser, token, 375)
    page.goto(f"{base}/missing?school=gs-park&print=1")
    page.wait_for_selector("table.missing")
    assert not page.locator("body > header").is_visible()
    assert "Grundschule am Park" in page.locator(".missing-head").inner_text()
    assert page.locator("a:has-text('zurück zur Liste')").is_visible()
    page.screenshot(path=str(ARTIFACTS / "web-missing-print-view.png"), full_page=True)
    page.context.close()
