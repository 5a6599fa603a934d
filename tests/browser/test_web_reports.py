"""The school reports in Debian's chromium (issue 17): the dashboard app served by uvicorn on a
free port over the unit tests' store with known roll-ups (tests/unit/test_web_reports.py), at
375 px and 1280 px, German (the default) and English. The report and its print view fit the
screen (no sideways scrolling), say their figures in the page's language ("80,0 %", "0,37 €";
"80.0%", "€0.37"), and on a phone the filters and links are a finger wide; printed, the header
names the selection and the period, without navigation. Screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.conftest import token_page as _page
from tests.browser.test_web_phone import (
    _in_viewport_and_big,
    _no_sideways_scrolling,
    _shot,
    _speaks,
)
from tests.support.asgi import served_app
from tests.unit.test_web_reports import World

pytestmark = pytest.mark.integration

WIDTHS_AND_LANGUAGES = [pytest.param(width, lang, id=f"{width}-{lang}")
                        for width in (375, 1280) for lang in ("de", "en")]
REPORT_WORDS = {
    "de": ["Schulbericht", "Zeitraum", "Gemeinde", "Schule", "von", "bis", "Anzeigen", "Vormonat",
           "Druckansicht (A4)", "Bereit zu Schulbeginn", "Schultage", "Stromkosten", "Gesamt",
           "Akkus nach Verschleiß", "verschlissen"],
    "en": ["School report", "Period", "Municipality", "School", "from", "to", "Show",
           "last month", "Print view (A4)", "Ready at school start", "School days",
           "Electricity cost", "Total", "Batteries by wear", "worn"],
}
PRINT_WORDS = {lang: [w for w in words if w not in ("von", "bis", "from", "to", "Anzeigen", "Show",
                                                    "Vormonat", "last month", "Druckansicht (A4)",
                                                    "Print view (A4)", "Gemeinde",
                                                    "Municipality", "Schule", "School")]
               for lang, words in REPORT_WORDS.items()}
HEAD = {"de": ("Schulbericht – Landkreis Musterland", "Zeitraum: November 2026",
               "Stand: Mittwoch, 2. Dezember 2026, 09:00 Uhr"),
        "en": ("School report – Landkreis Musterland", "Period: November 2026",
               "As of Wednesday, 2 December 2026, 09:00")}
# Grundschule am Park in November: 8 of 10 ready, 2 not returned in 21 school days, 1.234 kWh
# at 0.30 €/kWh.
PARK = {"de": {"readiness": "80,0\u00a0%", "per_day": "0,1", "energy": "1,2\u00a0kWh",
               "cost": "0,37\u00a0€", "availability": "90,0\u00a0%"},
        "en": {"readiness": "80.0%", "per_day": "0.1", "energy": "1.2\u00a0kWh", "cost": "€0.37",
               "availability": "90.0%"}}
BACK = {"de": "zurück zum Bericht", "en": "back to the report"}
FIELD = {"de": "{:02d}.11.2026", "en": "{:02d}/11/2026"}
SHORT = {"de": "2. November 2026 – 6. November 2026 (5 Tage, davon 5 Schultage)",
         "en": "2 November 2026 – 6 November 2026 (5 days, 5 school days)"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    world = World()
    with served_app(world.app, "uvicorn-reports") as base:
        yield base, world.tokens["admin"]


def _cells(page: Any, site: str) -> dict[str, str]:
    cells = page.locator(f"tr[data-site='{site}'] td")
    return dict(zip(cells.evaluate_all("cs => cs.map(c => c.dataset.col)"),
                    (c.strip() for c in cells.all_inner_texts()), strict=True))


def _big_enough(page: Any, locator: Any) -> None:
    """Within the width and, on a phone, a finger wide (44 × 44 px) once scrolled to."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size[
        "width"], box
    if page.viewport_size["width"] < 600:
        assert box["height"] >= 44 and box["width"] >= 44, box


@pytest.mark.parametrize(("width", "lang"), WIDTHS_AND_LANGUAGES)
def test_the_report_fits_and_speaks_the_language(served: tuple[str, str], browser: Any,
                                                 width: int, lang: str) -> None:
    base, token = served
    page = _page(browser, token, width)
    page.goto(f"{base}/reports?lang={lang}")
    page.wait_for_selector("table.report")
    _speaks(page, lang, REPORT_WORDS)
    _no_sideways_scrolling(page)
    head = page.locator(".report-head").inner_text()
    assert all(part in head for part in HEAD[lang]), head
    cells = _cells(page, "gs-park")
    assert {k: cells[k] for k in PARK[lang]} == PARK[lang]
    display = page.evaluate("getComputedStyle(document.querySelector('table.report td')).display")
    assert display == ("block" if width == 375 else "table-cell")  # a card per school on a phone
    for chart in page.locator("svg.rep-bars").all():
        box = chart.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    _in_viewport_and_big(page, page.locator(".report-filter select[name=municipality]"))
    for selector in (".report-filter select[name=school]", ".report-filter input[name=from]",
                     ".report-filter input[name=to]", ".report-filter button",
                     ".report-quick a >> nth=0", "a.print-link", "a.csv-link", "a.xlsx-link"):
        _big_enough(page, page.locator(selector))
    _shot(page, f"report-{width}-{lang}")

    # the fields show the days as people write them ("01.11.2026", "01/11/2026"); typed so,
    # they lead to a link with ISO days
    assert page.locator("input[name=from]").input_value() == FIELD[lang].format(1)
    page.select_option("select[name=school]", "gs-park")
    page.fill("input[name=from]", FIELD[lang].format(2))
    page.fill("input[name=to]", FIELD[lang].format(6))
    page.locator(".report-filter button").click()
    page.wait_for_url("**school=gs-park&from=2026-11-02&to=2026-11-06")
    assert page.locator("h1").inner_text().endswith("Grundschule am Park")
    assert SHORT[lang] in page.locator(".report-head").inner_text()
    assert page.locator("input[name=to]").input_value() == FIELD[lang].format(6)
    assert page.locator("table.report").count() == 1  # only the batteries: one school, its tiles
    tile = page.locator("li[data-figure=readiness] strong").inner_text()
    assert tile == PARK[lang]["readiness"]
    _speaks(page, lang, {k: [w for w in v if w not in ("Gesamt", "Total", "Schultage",
                                                       "School days", "Stromkosten",
                                                       "Electricity cost")]
                         for k, v in REPORT_WORDS.items()})
    _no_sideways_scrolling(page)
    page.context.close()


@pytest.mark.parametrize(("width", "lang"), WIDTHS_AND_LANGUAGES)
def test_printed_and_the_print_view(served: tuple[str, str], browser: Any, width: int,
                                    lang: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base, token = served
    page = _page(browser, token, width)
    page.goto(f"{base}/reports?lang={lang}")
    page.wait_for_selector("table.report")
    assert page.locator("body > header nav a[href='/reports']").count() == 1
    page.emulate_media(media="print")
    assert not page.locator("body > header").is_visible()
    assert not page.locator(".report-filter").is_visible()
    assert not page.locator(".report-actions").is_visible()
    head = page.locator(".report-head").inner_text()
    assert all(part in head for part in HEAD[lang]), head
    _speaks(page, lang, PRINT_WORDS)
    style = page.evaluate("""() => ({
        head: getComputedStyle(document.querySelector('table.report thead')).display,
        row: getComputedStyle(document.querySelector('table.report tbody tr')).breakInside,
    })""")
    assert style == {"head": "table-header-group", "row": "avoid"}
    if width == 1280:
        page.pdf(path=str(ARTIFACTS / f"web-report-a4-{lang}.pdf"), format="A4")

    page.emulate_media(media="screen")
    page.goto(f"{base}/reports?lang={lang}&print=1")
    page.wait_for_selector("table.report")
    assert not page.locator("body > header").is_visible()
    assert page.locator(".report-filter").count() == 0
    head = page.locator(".report-head").inner_text()
    assert all(part in head for part in HEAD[lang]), head
    _speaks(page, lang, PRINT_WORDS)
    _no_sideways_scrolling(page)
    assert {k: _cells(page, "gs-park")[k] for k in PARK[lang]} == PARK[lang]
    back = page.locator(f"a:text-is('{BACK[lang]}')")
    _big_enough(page, back)
    _shot(page, f"report-print-{width}-{lang}")
    back.click()
    page.wait_for_selector(".report-filter")
    page.context.close()


@pytest.mark.parametrize("lang", ["de", "en"])
def test_a_refused_period_says_why_on_a_phone(served: tuple[str, str], browser: Any,
                                              lang: str) -> None:
    base, token = served
    page = _page(browser, token, 375)
    response = page.goto(f"{base}/reports?from=2026-11-05&to=2026-11-04&lang={lang}")
    assert response is not None and response.status == 422
    error = page.locator(".report-error")
    assert error.is_visible()
    assert ("nach seinem Ende" if lang == "de" else "after it ends") in error.inner_text()
    _no_sideways_scrolling(page)
    page.context.close()
