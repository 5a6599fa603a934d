"""The "Fehlende iPads" list in Debian's chromium (issue 16, item 3): the dashboard app served by
uvicorn on a free port with the unit tests' fleet and alerts (tests/unit/test_web_missing.py), at
375 px and 1280 px, German (the default) and English (the language switch, ``?lang=en``), without
horizontal overflow; and with print media: no navigation, the school name and the date in the
page's language in the header, the table's head repeated and no row cut in two. Each page's
headings, buttons and words in its language and none of the other's; on a phone the filter's
controls on the first screen and a finger wide. Screenshots and A4 PDFs go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from server.api import create_app
from server.web import Dashboard, install_dashboard
from tests.browser.conftest import ARTIFACTS
from tests.browser.conftest import token_page as _page
from tests.browser.test_web_phone import (
    _in_viewport_and_big,
    _no_sideways_scrolling,
    _speaks,
    fresh_pages,  # noqa: F401 (a fixture: each test's pages closed after it)
    module_browser,  # noqa: F401 (a fixture: one chromium for the module)
)
from tests.support.asgi import served_app
from tests.unit.test_web_missing import NOW, sources

pytestmark = pytest.mark.integration

WIDTHS_AND_LANGUAGES = [pytest.param(width, lang, id=f"{width}-{lang}")
                        for width in (375, 1280) for lang in ("de", "en")]
# The list on screen (school and room names are German in both languages).
LIST_WORDS = {
    "de": ["Fehlende iPads", "Stand", "Gemeinde", "Schule", "alle", "Anzeigen",
           "Druckansicht (A4)", "Rückgabeprüfung", "nicht zurück", "wieder da seit", "sicher",
           "wahrscheinlich"],
    "en": ["Missing iPads", "As of", "Municipality", "School", "all", "Show", "Print view (A4)",
           "return check", "not back", "back since", "certain", "probable"],
}
# The paper: no navigation (so no language link), the table's head as a head.
PRINT_WORDS = {
    "de": ["Fehlende iPads", "Stand", "Mittwoch", "Dezember", "Uhr", "Schrank", "Fach",
           "Inventarnr.", "fehlt seit", "Gewissheit", "Befund", "sicher", "wieder da seit"],
    "en": ["Missing iPads", "As of", "Wednesday", "December", "Cabinet", "Slot", "Asset tag",
           "missing since", "Certainty", "Finding", "certain", "back since"],
}
# NOW is Wednesday 2 December 2026, 09:00 in Berlin (server.formatting.long_time).
HEAD = {"de": ("Fehlende iPads – Grundschule am Park", "Stand: Mittwoch, 2. Dezember 2026, 09:00 Uhr"),
        "en": ("Missing iPads – Grundschule am Park", "As of Wednesday, 2 December 2026, 09:00")}
COLUMNS = {"de": ["Schrank", "Fach", "Inventarnr.", "fehlt seit", "Gewissheit", "Befund"],
           "en": ["Cabinet", "Slot", "Asset tag", "missing since", "Certainty", "Finding"]}
# Raum 12, slot 1 (taken out Tuesday 13:00, not back at Tuesday's 16:30 check) and slot 2 (back).
ROW_1 = {"de": ["Raum 12", "1", "PARK-0001", "Di 13:00", "sicher",
                "bei der Rückgabeprüfung Di 16:30 nicht zurück"],
         "en": ["Raum 12", "1", "PARK-0001", "Tue 13:00", "certain",
                "not back at the return check Tue 16:30"]}
BACK = {"de": "wieder da seit Mi 08:30", "en": "back since Wed 08:30"}
SHOW = {"de": "Anzeigen", "en": "Show"}
BACK_TO_LIST = {"de": "zurück zur Liste", "en": "back to the list"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    """One server for the module: the pages only read the fleet and the alerts."""
    dash = Dashboard(sources())
    app = create_app(dash.sources)
    install_dashboard(app, dash)
    token = dash.sources.auth.store.create_token("admin", "browser", NOW)
    with served_app(app, "uvicorn-missing") as base:
        yield base, token


@pytest.mark.parametrize(("width", "lang"), WIDTHS_AND_LANGUAGES)
def test_the_list_fits_the_screen(served: tuple[str, str], browser: Any, width: int,
                                  lang: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base, token = served
    page = _page(browser, token, width)
    page.goto(f"{base}/missing")
    page.wait_for_selector("table.missing")
    if lang == "en":  # German by default; the switch in the header, then its cookie
        assert page.locator("h1").inner_text().startswith("Fehlende iPads – ")
        page.click("header a.lang")
        page.wait_for_selector("h1:has-text('Missing iPads')")
        page.wait_for_selector("table.missing")
    _speaks(page, lang, LIST_WORDS)
    assert page.locator("section.missing-school").count() == 3
    _no_sideways_scrolling(page)
    row = page.locator("tr[data-cabinet='gs-park/k1'][data-slot='1'] td")
    assert [c.strip() for c in row.all_inner_texts()] == ROW_1[lang]
    assert BACK[lang] in page.locator("tr[data-cabinet='gs-park/k1'][data-slot='2']").inner_text()
    cells = page.evaluate("getComputedStyle(document.querySelector('table.missing td')).display")
    # a phone gets one card per iPad (the column names in the cells), a desktop the table
    assert cells == ("block" if width == 375 else "table-cell")
    if width == 375:
        assert row.evaluate_all("ts => ts.map(t => t.dataset.label)") == COLUMNS[lang]
    else:
        assert page.locator("table.missing").first.locator("thead th").all_inner_texts() == \
            COLUMNS[lang]
    show = page.locator(".missing-filter button")
    assert show.inner_text() == SHOW[lang]
    for control in (page.locator(".missing-filter select[name=municipality]"),
                    page.locator(".missing-filter select[name=school]"), show):
        _in_viewport_and_big(page, control)  # the filter on the first screen, a finger wide
    page.screenshot(path=str(ARTIFACTS / f"web-missing-{width}-{lang}.png"), full_page=True)

    page.select_option("select[name=school]", "gs-park")
    show.click()
    page.wait_for_url("**school=gs-park**")
    assert page.locator("section.missing-school").count() == 1
    _speaks(page, lang, LIST_WORDS)
    _no_sideways_scrolling(page)

    page.goto(f"{base}/")  # the way in from the overview, still in the chosen language
    page.click("a[href='/missing']")
    page.wait_for_selector("table.missing")
    _speaks(page, lang, LIST_WORDS)
    page.context.close()


@pytest.mark.parametrize(("width", "lang"), WIDTHS_AND_LANGUAGES)
def test_printed_the_header_names_the_school_and_the_date(served: tuple[str, str], browser: Any,
                                                          width: int, lang: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base, token = served
    other = "en" if lang == "de" else "de"
    page = _page(browser, token, width)
    page.goto(f"{base}/missing?school=gs-park&lang={lang}")
    page.wait_for_selector("table.missing")
    assert page.locator("body > header nav").is_visible()  # on screen: the navigation
    page.emulate_media(media="print")
    assert not page.locator("body > header").is_visible()
    assert not page.locator(".missing-actions").is_visible()
    assert not page.locator(".missing-filter").is_visible()
    head = page.locator(".missing-head").inner_text()
    title, as_of = HEAD[lang]
    assert title in head and as_of in head, head
    assert HEAD[other][0] not in head and HEAD[other][1] not in head, head
    _speaks(page, lang, PRINT_WORDS)
    assert page.locator("table.missing thead th").all_inner_texts() == COLUMNS[lang]
    style = page.evaluate("""() => ({
        head: getComputedStyle(document.querySelector('table.missing thead')).display,
        row: getComputedStyle(document.querySelector('table.missing tbody tr')).breakInside,
    })""")
    assert style == {"head": "table-header-group", "row": "avoid"}
    page.screenshot(path=str(ARTIFACTS / f"web-missing-print-{width}-{lang}.png"), full_page=True)
    if width == 1280:
        page.pdf(path=str(ARTIFACTS / f"web-missing-a4-{lang}.pdf"), format="A4")

    page.goto(f"{base}/missing?lang={lang}")  # the district: one school a page, each dated
    page.wait_for_selector("table.missing")
    assert page.evaluate("getComputedStyle(document.querySelectorAll('section.missing-school')[1])"
                         ".breakBefore") == "page"
    headings = page.locator("section.missing-school h2").all_inner_texts()
    assert len(headings) > 1 and "Grundschule am Park" in headings[0], headings
    assert all(as_of in h for h in headings), headings
    assert not any(HEAD[other][1] in h for h in headings), headings

    # the print view (?print=1) on screen: the paper's layout, and a way back to the list
    page.emulate_media(media="screen")
    page.goto(f"{base}/missing?school=gs-park&print=1&lang={lang}")
    page.wait_for_selector("table.missing")
    assert not page.locator("body > header").is_visible()
    head = page.locator(".missing-head").inner_text()
    assert title in head and as_of in head, head
    _speaks(page, lang, PRINT_WORDS)
    _no_sideways_scrolling(page)
    back = page.locator(f"a:text-is('{BACK_TO_LIST[lang]}')")
    assert back.is_visible()
    assert page.locator(f"a:text-is('{BACK_TO_LIST[other]}')").count() == 0
    page.screenshot(path=str(ARTIFACTS / f"web-missing-print-view-{width}-{lang}.png"),
                    full_page=True)
    back.click()
    page.wait_for_selector(".missing-filter")
    assert page.locator("h1").inner_text() == HEAD[lang][0]
    page.context.close()


def test_on_a_phone_the_lists_links_are_a_finger_wide(served: tuple[str, str],
                                                      browser: Any) -> None:
    base, token = served
    page = _page(browser, token, 375)
    too_small = []
    for lang in ("de", "en"):
        for path, selector in ((f"/missing?lang={lang}", "a.print-link"),
                               (f"/missing?lang={lang}", "a.csv-link"),
                               (f"/missing?school=gs-park&print=1&lang={lang}", ".no-print a"),
                               (f"/?lang={lang}", ".missing-link a")):
            page.goto(f"{base}{path}")
            link = page.locator(selector)
            box = link.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
            if box["height"] < 44 or box["width"] < 44:
                too_small.append((path, link.inner_text(), box["width"], box["height"]))
    page.context.close()
    assert too_small == []
