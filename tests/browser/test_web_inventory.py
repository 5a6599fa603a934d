"""The inventory, the one home of iPad identity (issue "one home for iPad identity"), in Debian's
chromium at 375 × 812 and 1280 px, German (the default) and English: a technician on a phone
assigns an iPad to a slot from the slot page (a tag from the inventory that is in no slot; another
municipality's iPad refused on the assign page); the district admin uploads the MDM's CSV export
(German Excel: semicolons, Windows-1252) through the file input, sees the report and the new iPad
in the list, and a second file with a conflicting line refused with its line number and nothing
of it imported; a school's viewer sees only their school's iPads and no forms. Every page without
sideways scrolling and in its language (and none of the other's); on a phone the assign page's
controls on the first screen and a finger wide. After assigning, the iPad's page names its place
in words and lists the move. The language link of a page that answers a form (a refusal) leads to
the same page seen by GET.

The server is the real ASGI app (uvicorn in a thread, one for the module) over the unit tests'
``World`` (tests/unit/test_web_inventory.py): an in-memory inventory, the real Pipeline, a fixed
clock. Each parametrisation uses its own tags and slot, so the tests do not depend on their order.
Screenshots: docs/screenshots/inventory-375.png, inventory-1280.png and inventory-slot-375.png
with ``LADEWACHE_SCREENSHOTS=1``, else test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from server.auth.http import COOKIE as SESSION_COOKIE
from server.inventory import Place
from tests.browser.test_web_phone import (
    _in_viewport_and_big,
    _no_sideways_scrolling,
    _shot,
    _speaks,
    fresh_pages,  # noqa: F401 (a fixture: each test's pages closed after it)
    module_browser,  # noqa: F401 (a fixture: one chromium for the module)
)
from tests.support.asgi import served_app
from tests.unit.test_web_inventory import PASSWORD, World

pytestmark = pytest.mark.integration

WIDTHS_AND_LANGUAGES = [pytest.param(width, lang, id=f"{width}-{lang}")
                        for width in (375, 1280) for lang in ("de", "en")]
SLOTS = 8  # Raum 12 at gs-park comes online with 8 slots: PARK-1 and PARK-2 in 1 and 2
# each parametrisation assigns its own iPad to its own slot
SLOT_OF = {(375, "de"): 3, (375, "en"): 4, (1280, "de"): 5, (1280, "en"): 6}

# What each page says in each language (``_speaks``: all of its language, none of the other's;
# school and room names are German in both).
SLOT_WORDS = {
    "de": ["Schrank", "Fach", "seit", "Leistung", "Gewissheit", "Verlauf", "Ladevorgänge",
           "Techniker", "Abmelden"],
    "en": ["Cabinet", "Slot", "since", "Power", "Certainty", "Timeline", "Charge sessions",
           "Technician", "Log out"],
}
ASSIGN_WORDS = {
    "de": ["iPad zuordnen", "Fach", "iPad in diesem Fach", "keines eingetragen", "Inventarnr.",
           "Zuordnen"],
    "en": ["Assign an iPad", "Slot", "iPad in this slot", "none entered", "Asset tag", "Assign"],
}
IPAD_WORDS = {
    "de": ["Inventar", "Ort", "Seriennummer", "Zuletzt geändert", "Ändern", "Speichern",
           "Aus dem Fach nehmen", "Ortswechsel", "Fach"],
    "en": ["Inventory", "Place", "Serial number", "Last changed", "Edit", "Save",
           "Take out of the slot", "Moves", "Slot"],
}
LIST_WORDS = {  # the list as the district admin sees it: filter, table, both forms
    "de": ["Inventar", "Schule", "alle", "Suche", "Anzeigen", "Inventarnr.", "Seriennummer", "Ort",
           "Fach", "in keinem Fach", "iPad hinzufügen", "Hinzufügen",
           "Aus dem MDM importieren (CSV)", "Datei", "nur prüfen, nichts speichern", "Importieren",
           "Kreis-Admin"],
    "en": ["Inventory", "School", "all", "Search", "Show", "Asset tag", "Serial number", "Place",
           "Slot", "in no slot", "Add an iPad", "Add", "Import from the MDM (CSV)", "File",
           "check only, save nothing", "Import", "District admin"],
}
VIEWER_WORDS = {  # the list as a school's viewer sees it: no school to pick, no forms
    "de": ["Inventar", "Suche", "Anzeigen", "Inventarnr.", "Seriennummer", "Ort", "Fach",
           "Schule (lesen)"],
    "en": ["Inventory", "Search", "Show", "Asset tag", "Serial number", "Place", "Slot",
           "School (read-only)"],
}
FORM_WORDS = {"de": ["iPad hinzufügen", "Aus dem MDM importieren (CSV)", "Importieren"],
              "en": ["Add an iPad", "Import from the MDM (CSV)", "Import"]}
COLUMNS = {"de": ["Inventarnr.", "Name", "Seriennummer", "Ort", "Fach", "seit"],
           "en": ["Asset tag", "Name", "Serial number", "Place", "Slot", "since"]}
ASSIGN_LINK = {"de": "iPad zuordnen", "en": "Assign an iPad"}
ANOTHER_LINK = {"de": "anderes iPad zuordnen", "en": "assign another iPad"}
ASSIGN_BUTTON = {"de": "Zuordnen", "en": "Assign"}
CLEAR_BUTTON = {"de": "Fach leeren (kein iPad eintragen)", "en": "Empty the slot (enter no iPad)"}
NOT_YOURS = {"de": "Das iPad „SUED-1“ steht an einer Schule, die Sie nicht betreuen.",
             "en": "The iPad “SUED-1” is at a school you do not look after."}
SLOT_WORD = {"de": "Fach", "en": "Slot"}
UNPLACED = {"de": "in keinem Fach", "en": "in no slot"}
IMPORT_BUTTON = {"de": "Importieren", "en": "Import"}
REPORT = {"de": "1 neu, 0 geändert, 0 unverändert, 0 ohne Inventarnummer übersprungen.",
          "en": "1 new, 0 changed, 0 unchanged, 0 without asset tag skipped."}
REFUSED = {"de": "Nichts importiert – 1 Fehler:", "en": "Nothing imported – 1 error(s):"}
TAG_TAKEN = {"de": "Zeile 3: Inventarnummer „{tag}“ gehört schon einem anderen iPad.",
             "en": "Line 3: Asset tag “{tag}” belongs to another iPad already."}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, World]]:
    """One server for the module; Raum 12 at gs-park online (its birth through the Pipeline)."""
    world = World()
    world.cabinet_online("gs-park", slots=SLOTS)
    with served_app(world.app, "uvicorn-inventory") as base:
        yield base, world


@pytest.fixture(scope="module")
def logins() -> dict[str, Any]:
    """Each user logs in through the form once per module (scrypt and a context cost a second on
    a small machine); later tests start their context from that session cookie."""
    return {}


def _login(browser: Any, base: str, logins: dict[str, Any], user: str, width: int) -> Any:
    """A fresh context (and page) logged in as ``user``, in German: no language cookie."""
    viewport = {"width": width, "height": 812 if width < 600 else 900}
    context = browser.new_context(viewport=viewport, has_touch=True,
                                  storage_state=logins.get(user))
    page = context.new_page()
    page.set_default_timeout(15_000)
    if user not in logins:
        page.goto(f"{base}/login")
        page.fill("input[name=name]", user)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        state = context.storage_state()
        state["cookies"] = [c for c in state["cookies"] if c["name"] == SESSION_COOKIE]
        assert len(state["cookies"]) == 1, state
        logins[user] = state
    return page


def _press(page: Any, locator: Any) -> None:
    """A finger on a phone, the mouse on a desktop."""
    if page.viewport_size["width"] < 600:
        locator.tap()
    else:
        locator.click()


def _finger_wide_below(page: Any, locator: Any) -> None:
    """A control further down the page: scrolled to, then inside the width and a finger wide."""
    locator.scroll_into_view_if_needed()
    _in_viewport_and_big(page, locator)


def _on_first_screen(page: Any, locator: Any) -> None:
    """Text (not a control) shown without scrolling: inside the viewport."""
    box = locator.bounding_box()
    viewport = page.viewport_size
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= viewport["width"], box
    assert box["y"] + box["height"] <= viewport["height"], box


def _rows(page: Any) -> list[str]:
    return page.locator("table.inventory tr[data-tag]").evaluate_all(
        "rs => rs.map(r => r.dataset.tag)")


@pytest.mark.parametrize(("width", "lang"), WIDTHS_AND_LANGUAGES)
def test_a_technician_assigns_an_ipad_from_the_slot_page(
        served: tuple[str, World], browser: Any, logins: dict[str, Any], width: int,
        lang: str) -> None:
    base, world = served
    slot = SLOT_OF[(width, lang)]
    tag = f"SPARE-{width}-{lang}"
    world.inventory.save(tag, None, "Ersatz", "admin")  # in the inventory, in no slot
    page = _login(browser, base, logins, "tech-nord", width)
    page.goto(f"{base}/cabinets/gs-park/k1/slots/{slot}")
    if lang == "en":  # German by default; the header's switch (then its cookie)
        assert page.locator("h1").inner_text().startswith("Schrank Raum 12 · Fach")
        page.click("header a.lang")
        page.wait_for_selector("h1:has-text('Cabinet Raum 12')")
    assert page.locator("h1").inner_text().strip() == \
        f"{'Schrank' if lang == 'de' else 'Cabinet'} Raum 12 · {SLOT_WORD[lang]} {slot}"
    _speaks(page, lang, SLOT_WORDS)
    _no_sideways_scrolling(page)
    assert page.locator("a.ipad-link").count() == 0  # no iPad entered here yet
    link = page.locator("a.assign-link")
    assert link.inner_text() == ASSIGN_LINK[lang]
    _in_viewport_and_big(page, link)  # on the first screen, a finger wide
    _press(page, link)

    page.wait_for_url("**/inventory/slot?**")
    assert f"site=gs-park&cabinet=k1&slot={slot}" in page.url
    _speaks(page, lang, ASSIGN_WORDS)
    _no_sideways_scrolling(page)
    assert page.locator("h1 small").inner_text() == \
        f"Grundschule am Park · Raum 12 · {SLOT_WORD[lang]} {slot}"
    assert page.locator(".current-none").is_visible()
    # the language link keeps the page's query (the slot it is about)
    other = "de" if lang == "en" else "en"
    assert page.locator("header a.lang").get_attribute("href") == \
        f"?site=gs-park&cabinet=k1&slot={slot}&lang={other}"
    tag_input = page.locator("form.inv-edit input[name=tag]")
    button = page.locator("form.inv-edit button[value=place]")
    assert button.inner_text() == ASSIGN_BUTTON[lang]
    for control in (tag_input, button):
        _in_viewport_and_big(page, control)
    # the datalist offers the iPads in no slot: ours, not those in a slot
    offered = page.locator("datalist#unplaced-ipads option").evaluate_all(
        "os => os.map(o => o.value)")
    assert tag in offered and "PARK-1" not in offered and "SUED-1" not in offered, offered
    assert tag_input.get_attribute("list") == "unplaced-ipads"
    assert page.locator(f"button:text-is('{CLEAR_BUTTON[lang]}')").count() == 0  # nothing to clear

    tag_input.press_sequentially(tag)  # typed, as on the phone's keyboard
    if width < 600:
        _shot(page, f"inventory-slot-{width}-{lang}")

    # another municipality's iPad: refused on the assign page, what was typed kept
    tag_input.fill("SUED-1")
    with page.expect_navigation() as refused:
        _press(page, button)
    assert refused.value is not None and refused.value.status == 422
    error = page.locator("p.error[role=alert]")
    assert error.inner_text() == NOT_YOURS[lang]
    assert page.locator("form.inv-edit input[name=tag]").input_value() == "SUED-1"
    assert world.inventory.snapshot().tag_at(Place("gs-sued", "k1", 1)) == "SUED-1"
    _speaks(page, lang, ASSIGN_WORDS)
    _no_sideways_scrolling(page)

    page.locator("form.inv-edit input[name=tag]").fill(tag)  # now the iPad in no slot
    _press(page, page.locator("form.inv-edit button[value=place]"))
    page.wait_for_url(f"**/cabinets/gs-park/k1/slots/{slot}")
    ipad_link = page.locator("h1 a.ipad-link")
    assert ipad_link.inner_text() == tag  # the slot page shows the iPad now
    assert page.locator("a.assign-link").inner_text() == ANOTHER_LINK[lang]
    _speaks(page, lang, SLOT_WORDS)
    _no_sideways_scrolling(page)
    ipad = world.inventory.get(tag)
    assert ipad is not None and ipad.place == Place("gs-park", "k1", slot)
    assert [(m.before, m.after, m.by) for m in world.inventory.moves(tag)] == \
        [(None, Place("gs-park", "k1", slot), "tech-nord")]
    view = world.fleet.get("gs-park", "k1")
    assert view is not None and view.slots[slot - 1].asset_tag == tag  # the collector's view too

    # the iPad's page: its place in words, the move, and what may be done with it
    _press(page, ipad_link)
    page.wait_for_url("**/inventory/ipad?tag=*")
    assert page.locator("h1").inner_text().startswith(f"iPad {tag}")
    place = f"Grundschule am Park · Raum 12 · {SLOT_WORD[lang]} {slot}"
    assert page.locator("dl.facts dd").first.inner_text().startswith(place)
    moves = page.locator("ul.moves li").all_inner_texts()
    assert len(moves) == 1 and moves[0].endswith(f": {UNPLACED[lang]} → {place} (tech-nord)"), \
        moves
    _speaks(page, lang, IPAD_WORDS)
    _no_sideways_scrolling(page)


@pytest.mark.parametrize(("width", "lang"), WIDTHS_AND_LANGUAGES)
def test_the_admin_imports_an_mdm_file_all_or_nothing(
        served: tuple[str, World], browser: Any, logins: dict[str, Any], width: int,
        lang: str) -> None:
    base, world = served
    tag, serial = f"NEU-{width}-{lang}", f"DMPX{width:04d}{lang.upper()}"
    refused_tag = f"NEU2-{width}-{lang}"
    name = f"Klasse 3a – Gerät {width}"  # en dash and umlaut: Windows-1252 bytes 0x96, 0xE4
    page = _login(browser, base, logins, "admin", width)
    page.goto(f"{base}/inventory?lang={lang}")  # the language by the query (then its cookie)
    page.wait_for_selector("table.inventory")
    assert tag not in _rows(page)
    _no_sideways_scrolling(page)

    # German Excel's "CSV (Trennzeichen-getrennt)": semicolons, CRLF, Windows-1252
    data = (f"Seriennummer;Inventarnummer;Gerätename\r\n{serial};{tag};{name}\r\n"
            ).encode("cp1252")
    page.locator("form[action='/inventory/import'] input[type=file]").set_input_files(
        {"name": "relution-export.csv", "mimeType": "text/csv", "buffer": data})
    button = page.locator("form[action='/inventory/import'] button[type=submit]")
    assert button.inner_text() == IMPORT_BUTTON[lang]
    if width < 600:
        _finger_wide_below(page, page.locator("form[action='/inventory/import'] input[type=file]"))
        _finger_wide_below(page, button)
    with page.expect_navigation() as done:
        _press(page, button)
    assert done.value is not None and done.value.status == 200
    report = page.locator(".inv-report[role=status]")
    assert report.inner_text().strip() == REPORT[lang]
    _on_first_screen(page, report)  # the report at the top
    row = page.locator(f"tr[data-tag='{tag}']")
    assert row.is_visible()
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert cells == [tag, name, serial, UNPLACED[lang], "–", "–"], cells
    ipad = world.inventory.get(tag)
    assert ipad is not None and (ipad.serial, ipad.name, ipad.place) == (serial, name, None)
    display = row.locator("td").first.evaluate("td => getComputedStyle(td).display")
    assert display == ("block" if width < 600 else "table-cell")  # a card on a phone
    if width < 600:
        assert row.locator("td").evaluate_all("ts => ts.map(t => t.dataset.label)") == \
            COLUMNS[lang]
    else:
        assert page.locator("table.inventory thead th").all_inner_texts() == COLUMNS[lang]
    _speaks(page, lang, LIST_WORDS)
    _no_sideways_scrolling(page)
    _shot(page, f"inventory-{width}-{lang}")

    # a second file: line 2 fine, line 3 gives our new iPad's tag to another serial
    conflict = (f"Seriennummer;Inventarnummer;Gerätename\r\n"
                f"DMPY{width:04d}{lang.upper()};{refused_tag};Ersatz\r\n"
                f"DMPZ{width:04d}{lang.upper()};{tag};Klasse 4b\r\n").encode("cp1252")
    page.locator("form[action='/inventory/import'] input[type=file]").set_input_files(
        {"name": "relution-export-2.csv", "mimeType": "text/csv", "buffer": conflict})
    with page.expect_navigation() as refused:
        _press(page, page.locator("form[action='/inventory/import'] button[type=submit]"))
    assert refused.value is not None and refused.value.status == 422
    report = page.locator(".inv-report.refused[role=alert]")
    assert report.locator("strong").inner_text() == REFUSED[lang]
    assert report.locator("li").all_inner_texts() == [TAG_TAKEN[lang].format(tag=tag)]
    _on_first_screen(page, report)
    _no_sideways_scrolling(page)
    assert refused_tag not in _rows(page)  # nothing of the file: not line 2 either
    assert world.inventory.get(refused_tag) is None
    ipad = world.inventory.get(tag)
    assert ipad is not None and (ipad.serial, ipad.name) == (serial, name)
    assert [c.strip() for c in page.locator(f"tr[data-tag='{tag}'] td").all_inner_texts()][:3] \
        == [tag, name, serial]


@pytest.mark.parametrize(("width", "lang"), WIDTHS_AND_LANGUAGES)
def test_a_school_viewer_sees_their_school_only_and_no_forms(
        served: tuple[str, World], browser: Any, logins: dict[str, Any], width: int,
        lang: str) -> None:
    base, world = served
    page = _login(browser, base, logins, "lehrerin", width)
    page.goto(f"{base}/inventory")
    page.wait_for_selector("table.inventory")
    if lang == "en":
        page.click("header a.lang")
        page.wait_for_selector("h1:has-text('Inventory')")
    theirs = [i.asset_tag for i in world.inventory.ipads(["gs-park"], unplaced=False)]
    assert "PARK-1" in theirs and "PARK-2" in theirs
    assert _rows(page) == theirs  # nothing of gs-sued, no iPad in no slot
    places = page.locator("table.inventory tr[data-tag] td:nth-child(4)").all_inner_texts()
    assert places and all(p.strip() == "Grundschule am Park · Raum 12" for p in places), places
    assert page.locator("main form[method=post]").count() == 0  # neither add nor import
    assert page.locator("main input[type=file]").count() == 0
    assert page.locator("select[name=school]").count() == 0  # one school: nothing to pick
    _speaks(page, lang, VIEWER_WORDS)
    text = page.locator("body").inner_text()
    assert [w for w in FORM_WORDS[lang] if w in text] == [], text
    _no_sideways_scrolling(page)

    search = page.locator("form.inv-filter input[name=q]")
    _in_viewport_and_big(page, search)
    search.fill("PARK-1")
    _press(page, page.locator("form.inv-filter button"))
    page.wait_for_url("**q=PARK-1**")
    assert _rows(page) == ["PARK-1"]
    _speaks(page, lang, VIEWER_WORDS)  # the language survives the filter's reload
    other = "de" if lang == "en" else "en"
    assert page.locator("header a.lang").get_attribute("href") == f"?q=PARK-1&lang={other}"

    page.goto(f"{base}/cabinets/gs-park/k1/slots/1")  # the slot page: nothing to assign
    page.wait_for_selector("h1 a.ipad-link")
    assert page.locator("a.assign-link").count() == 0
    _no_sideways_scrolling(page)
    assert page.goto(f"{base}/inventory/slot?site=gs-park&cabinet=k1&slot=1").status == 403


def test_the_language_link_after_a_refusal_stays_on_the_page(
        served: tuple[str, World], browser: Any, logins: dict[str, Any]) -> None:
    base, _ = served
    page = _login(browser, base, logins, "tech-nord", 375)
    page.goto(f"{base}/inventory/slot?site=gs-park&cabinet=k1&slot=7")
    page.fill("form.inv-edit input[name=tag]", "SUED-1")
    with page.expect_navigation() as refused:
        page.locator("form.inv-edit button[value=place]").tap()
    assert refused.value is not None and refused.value.status == 422
    with page.expect_navigation() as switched:
        page.locator("header a.lang").tap()
    assert switched.value is not None and switched.value.status == 200, page.url
    _speaks(page, "en", ASSIGN_WORDS)  # the assign page for slot 7, in English
    assert page.locator("h1 small").inner_text() == "Grundschule am Park · Raum 12 · Slot 7"
