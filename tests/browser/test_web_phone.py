"""The dashboard on a phone (375 × 812) and a desktop (1280 px), German and English, in Debian's
chromium (issue 16, items 2 and 4): the overview's filters and its "cannot tell" column, the
cabinet page an alert leads to, acknowledging and silencing an alert in one tap each without
sideways scrolling, a comment being typed that survives the live refresh, and silences in words.
Overview, cabinet page and alerts run at both widths in both languages: each page's headings,
buttons and state words in its language and none of the other's, and on a phone the key controls
on the first screen and a finger wide.

The server is the real ASGI app (uvicorn in a thread) over an in-memory fleet and alert state with
a fixed clock: no broker, no agent, so the pages show exactly what the test put there. Screenshots
of overview, cabinet and alerts at both widths go to docs/screenshots/ (``LADEWACHE_SCREENSHOTS=1``)
or test-artifacts/."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Certainty,
    DoorState,
    MainsState,
    Sensing,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
)
from server.alerts.model import Alert
from server.alerts.silence import Silence, SilenceKind
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import Auth, Role, User, UserStore
from server.fleet import Fleet
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from tests.browser.conftest import ARGS, ARTIFACTS, CHROMIUM
from tests.support.asgi import served_app

NOW = datetime.now(UTC).replace(microsecond=0)
PASSWORD = "a-long-password-for-tests"
REFRESH_MS = 5000  # base.html: data-live="5000"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
ORG = Organisation.model_validate({
    "district": "Landkreis Musterland", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "musterdorf", "name": "Musterdorf"},
                       {"id": "neustadt", "name": "Neustadt"}],
    "schools": [{"site": "gs-park", "name": "Grundschule am Park", "municipality": "musterdorf"},
                {"site": "gs-linde", "name": "Grundschule Lindenplatz", "municipality": "musterdorf"},
                {"site": "gs-nord", "name": "Grundschule Neustadt-Nord", "municipality": "neustadt"}],
    "cabinets": [{"school": "gs-park", "id": "k1", "name": "Raum 12",
                  "slots": {n: f"GS-PARK-{n:04d}" for n in range(1, 17)}},
                 {"school": "gs-linde", "id": "k1", "name": "Raum 3"},
                 {"school": "gs-nord", "id": "k1", "name": "Bibliothek"}],
})
# What a page says in each language: headings, button labels and state words. ``_speaks`` wants
# every word of the page's language and none of the other's (whole words: "Temperatur" is not
# found in "Temperature"). Names from the configuration (schools, rooms) are German in both.
OVERVIEW_WORDS = {
    "de": ["Übersicht", "Alarme", "Abmelden", "Gemeinde", "Schule", "alle", "Filtern",
           "Schränke online", "geladen", "lädt", "leer", "nicht beurteilbar", "offene Alarme",
           "Fehlende iPads"],
    "en": ["Overview", "Alerts", "Log out", "Municipality", "School", "all", "Filter",
           "cabinets online", "charged", "charging", "empty", "cannot tell", "open alerts",
           "Missing iPads"],
}
CABINET_WORDS = {
    "de": ["Schrank", "Alarme", "Warnung", "aktiv", "Tür steht zu lange offen", "lädt nicht",
           "Quittieren", "Stummschalten", "Tür", "offen", "Netz", "Temperatur", "21,5 °C",
           "zuletzt gesehen", "Erfassung", "Ladefehler", "Techniker vor Ort", "Stunden"],
    "en": ["Cabinet", "Alerts", "warning", "firing", "door open too long", "not charging",
           "Acknowledge", "Silence", "Door", "open", "Mains", "Temperature", "21.5 °C",
           "last seen", "Sensing", "charge fault", "Technician on site", "hours"],
}
ALERTS_WORDS = {
    "de": ["Alarme", "auch behobene", "Stummschaltungen", "Techniker vor Ort", "Stummschalten",
           "von", "bis", "quittiert von", "stumm", "Tür zu lange offen"],
    "en": ["Alerts", "include resolved", "Silences", "Technician on site", "Silence", "by",
           "until", "acknowledged by", "silenced", "Door open too long"],
}
# since when the dashboard's collector hears nothing (None: it receives); a test sets it
_SILENT: list[datetime | None] = [None]
WIDTHS_AND_LANGUAGES = [pytest.param(viewport, lang, id=f"{viewport['width']}-{lang}")
                        for viewport in (PHONE, DESKTOP) for lang in ("de", "en")]
ACK = {"de": "Quittieren", "en": "Acknowledge"}
SILENCE = {"de": "Stummschalten", "en": "Silence"}
_STATES = [SlotState.CHARGED] * 6 + [SlotState.CHARGING] * 4 + [
    SlotState.EMPTY, SlotState.EMPTY, SlotState.FAULT, SlotState.PRESENT_IDLE,
    SlotState.UNKNOWN, SlotState.UNKNOWN]


def _cabinet(fleet: Fleet, site: str, states: list[SlotState], door: DoorState) -> None:
    env: dict[str, Any] = {"v": 1, "site": site, "cabinet": "k1", "boot_id": "c" * 32,
                           "ts": NOW - timedelta(seconds=5), "clock_synced": True}
    fleet.apply(StatusMessage(**env, seq=0, status=AgentStatus.ONLINE), NOW)
    fleet.apply(BirthMessage(**env, seq=1, agent_version="0.2", config_hash="00000000",
                             cabinet_model="ladewache-16", slot_count=len(states),
                             slots=[SlotInfo(slot=n) for n in range(1, len(states) + 1)],
                             poll_interval_s=1.0, telemetry_interval_s=10.0,
                             sensing=Sensing(slot_power=True, presence=True, door=True)), NOW)
    fleet.apply(StateMessage(
        **env, seq=2, door=door, temperature_c=21.5, mains=MainsState.ON, devices=[],
        slots=[SlotSnapshot(slot=n, state=st, power_w=12.5 if st is SlotState.CHARGING else 0.0,
                            since=NOW - timedelta(hours=1),
                            certainty=Certainty.CANNOT_TELL if st is SlotState.UNKNOWN
                            else Certainty.CERTAIN)
               for n, st in enumerate(states, 1)]), NOW)


def _alert(name: str, site: str, **labels: str) -> Alert:
    return Alert({"alertname": name, "site": site, "cabinet": "k1", **labels}, {},
                 NOW - timedelta(minutes=20), NOW - timedelta(minutes=15))


@pytest.fixture(scope="module", name="browser")
def module_browser() -> Iterator[Any]:
    """One chromium for the module (conftest's ``browser`` starts one per test): a launch a test
    fewer on a small machine. Each test still gets fresh pages (``fresh_pages`` closes them)."""
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def fresh_pages(browser: Any) -> Iterator[None]:
    """Whatever a test opened (its pages, their cookies) is closed after it, passed or not."""
    yield
    for context in browser.contexts:
        context.close()


@pytest.fixture
def dashboard() -> Iterator[tuple[str, Dashboard]]:
    fleet = Fleet()
    _cabinet(fleet, "gs-park", _STATES, DoorState.OPEN)
    _cabinet(fleet, "gs-linde", [SlotState.CHARGED] * 8, DoorState.CLOSED)
    _cabinet(fleet, "gs-nord", [SlotState.UNKNOWN] * 3 + [SlotState.CHARGED] * 5, DoorState.CLOSED)
    state = StoredState.in_memory()
    for alert in (_alert("door_open", "gs-park"),
                  _alert("ipad_not_charging", "gs-park", slot="13", asset_tag="GS-PARK-0013")):
        state.put_active(alert)
    state.add_silence(Silence({"site": "gs-linde", "cabinet": "k1"}, NOW, NOW + timedelta(hours=2),
                              "technik-musterdorf", "Fach 4 klemmt", SilenceKind.TECHNICIAN,
                              None, NOW))
    store = UserStore(open_store(None))
    store.add_user(User("technik-musterdorf", Role.TECHNICIAN, municipality="musterdorf"),
                   PASSWORD, NOW)
    store.add_user(User("chefin", Role.ADMIN), PASSWORD, NOW)
    sources = ApiSources(fleet=fleet, alerts=state, state=state, clock=lambda: datetime.now(UTC),
                         org=ORG, ingest_stats=lambda **_: IngestStats(0, 0, {}),
                         mqtt_stats=lambda: MqttStats(_SILENT[0] is None, 1, 0, None, _SILENT[0]),
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK),
                         auth=Auth(store, lambda: datetime.now(UTC)))
    dash = Dashboard(sources)
    app = create_app(sources)
    install_dashboard(app, dash)
    with served_app(app, "uvicorn-phone") as base:
        yield base, dash


def _login(browser: Any, http: str, viewport: dict[str, int], user: str = "technik-musterdorf",
           lang: str = "de") -> Any:
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(15_000)
    page.goto(f"{http}/login?lang={lang}")
    page.fill("input[name=name]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("table.overview")
    return page


def _speaks(page: Any, lang: str, words: dict[str, list[str]]) -> None:
    """The page is in ``lang``: ``<html lang>``, each of its ``words`` shown, none of the other
    language's (whole words, case-sensitive, in the rendered text)."""
    assert page.locator("html").get_attribute("lang") == lang
    text = page.locator("body").inner_text()

    def shown(word: str) -> bool:
        return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None

    other = "en" if lang == "de" else "de"
    assert [w for w in words[lang] if not shown(w)] == [], text
    assert [w for w in words[other] if shown(w)] == [], text


def _no_sideways_scrolling(page: Any) -> None:
    sizes = page.evaluate("""() => ({scroll: document.scrollingElement.scrollWidth,
                                     viewport: window.innerWidth})""")
    assert sizes["scroll"] <= sizes["viewport"], sizes


def _in_viewport_and_big(page: Any, locator: Any) -> None:
    """Visible without scrolling sideways or down; on a phone a finger wide (44 × 44 px)."""
    assert locator.is_visible()
    box = locator.bounding_box()
    viewport = page.viewport_size
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], box
    if viewport["width"] < 600:
        assert box["height"] >= 44 and box["width"] >= 44, box


def _shot(page: Any, name: str) -> None:
    """docs/screenshots/ gets the German pages only (``<page>-<width>.png``), kept small."""
    folder = ARTIFACTS
    if os.environ.get("LADEWACHE_SCREENSHOTS") and name.endswith("-de"):
        folder, name = SCREENSHOTS, name.removesuffix("-de")
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.mark.parametrize(("viewport", "lang"), WIDTHS_AND_LANGUAGES)
def test_overview_filters_and_the_cannot_tell_column(
        dashboard: tuple[str, Dashboard], browser: Any, viewport: dict[str, int], lang: str) -> None:
    http, _ = dashboard
    page = _login(browser, http, viewport, user="chefin", lang=lang)
    page.clock.install()
    width = viewport["width"]
    _no_sideways_scrolling(page)
    _speaks(page, lang, OVERVIEW_WORDS)
    for control in ("select[name=municipality]", "select[name=school]", "form.filters button"):
        _in_viewport_and_big(page, page.locator(control))  # the filters on the first screen
    assert page.locator("form.filters button").inner_text() == \
        ("Filtern" if lang == "de" else "Filter")
    cannot_tell = "nicht beurteilbar" if lang == "de" else "cannot tell"
    assert page.locator("li[data-count='cannot_tell'] b").inner_text() == "5"  # 2 + 3
    row = page.locator("tr[data-cabinet='gs-nord/k1'] td.cannot-tell")
    assert row.inner_text().strip() == "3"
    if width < 600:  # a card: the cell says what it counts
        assert row.get_attribute("data-label") == cannot_tell
    else:
        assert page.locator("table.overview thead th", has_text=cannot_tell).is_visible()
    _shot(page, f"overview-{width}-{lang}")

    page.select_option("select[name=municipality]", "musterdorf")  # applies on its own
    page.wait_for_url("**municipality=musterdorf**")
    rows = page.locator("tr.cabinet").evaluate_all("rs => rs.map(r => r.dataset.cabinet)")
    assert rows == ["gs-linde/k1", "gs-park/k1"]
    assert page.locator("li[data-count='cannot_tell'] b").inner_text() == "2"
    page.select_option("select[name=school]", "gs-park")
    page.wait_for_url("**school=gs-park**")
    assert page.locator("tr.cabinet").count() == 1
    assert page.locator("li[data-count='missing'] b").inner_text() == "2"
    _no_sideways_scrolling(page)
    _speaks(page, lang, OVERVIEW_WORDS)  # the language survives the filter's reload

    page.clock.run_for(REFRESH_MS)  # the live refresh keeps the filter
    page.wait_for_function("document.getElementById('live').dataset.updated")
    assert page.locator("tr.cabinet").evaluate_all(
        "rs => rs.map(r => r.dataset.cabinet)") == ["gs-park/k1"]
    assert page.locator("select[name=school]").input_value() == "gs-park"
    assert page.locator("li[data-count='cannot_tell']").inner_text().endswith(cannot_tell)


@pytest.mark.parametrize(("viewport", "lang"), WIDTHS_AND_LANGUAGES)
def test_acknowledge_and_silence_in_one_tap_each(
        dashboard: tuple[str, Dashboard], browser: Any, viewport: dict[str, int], lang: str) -> None:
    http, dash = dashboard
    page = _login(browser, http, viewport, lang=lang)
    width = viewport["width"]
    page.goto(f"{http}/cabinets/gs-park/k1")  # where an alert's link leads
    page.wait_for_selector(".cabinet-alerts tr.alert")
    _no_sideways_scrolling(page)
    _speaks(page, lang, CABINET_WORDS)  # the language chosen at login (its cookie)
    assert page.locator("h1").inner_text().startswith(
        f"{'Schrank' if lang == 'de' else 'Cabinet'} Raum 12")
    _shot(page, f"cabinet-{width}-{lang}")
    door = next(a for a in dash.sources.alerts.active() if a.labels["alertname"] == "door_open")
    row = page.locator(f"tr[data-fingerprint='{door.fingerprint}']")
    assert row.locator("td.summary").is_visible()
    ack = row.locator("form.ack-form button")
    silence = row.locator("form.silence-form button")
    _in_viewport_and_big(page, ack)  # the first alert's buttons are on the first screen
    _in_viewport_and_big(page, silence)
    assert (ack.inner_text(), silence.inner_text()) == (ACK[lang], SILENCE[lang])
    assert page.locator(".slots .slot").count() == 16  # and the slots below them

    ack.click()  # one tap
    page.wait_for_selector(f"tr[data-fingerprint='{door.fingerprint}'] div.ack")
    assert page.locator(f"tr[data-fingerprint='{door.fingerprint}'] div.ack").inner_text() == \
        f"{'quittiert von' if lang == 'de' else 'acknowledged by'} technik-musterdorf"
    assert [a.by for a in dash.sources.state.acks() if a.fingerprint == door.fingerprint] == \
        ["technik-musterdorf"]
    _no_sideways_scrolling(page)
    row = page.locator(f"tr[data-fingerprint='{door.fingerprint}']")
    silence = row.locator("form.silence-form button")
    _in_viewport_and_big(page, silence)
    assert silence.inner_text() == SILENCE[lang]
    silence.click()  # one tap: 4 hours
    page.wait_for_selector(f"tr[data-fingerprint='{door.fingerprint}'] td.state:has-text("
                           f"'{'stumm' if lang == 'de' else 'silenced'}')")
    assert page.locator(f"tr[data-fingerprint='{door.fingerprint}'] td.state").inner_text() == \
        ("aktiv · stumm" if lang == "de" else "firing · silenced")
    _speaks(page, lang, CABINET_WORDS)
    _no_sideways_scrolling(page)
    made = [s for s in dash.sources.state.silences() if s.matchers.get("alertname") == "door_open"]
    assert len(made) == 1 and made[0].created_by == "technik-musterdorf"

    page.goto(f"{http}/alerts")
    page.wait_for_selector("ul.silences li")
    _no_sideways_scrolling(page)
    _speaks(page, lang, ALERTS_WORDS)
    texts = page.locator("ul.silences li .what").all_inner_texts()
    door_text = "Tür zu lange offen" if lang == "de" else "Door open too long"
    assert any("Grundschule am Park" in t and "Raum 12" in t and door_text in t for t in texts), texts
    assert not any("=" in t or "gs-park" in t for t in texts), texts
    by = page.locator("ul.silences li .who").all_inner_texts()
    assert any("technik-musterdorf" in b for b in by), by
    _shot(page, f"alerts-{width}-{lang}")
    for button in page.locator("ul.silences button, table.alerts button").all():
        box = button.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width
        if width < 600:
            assert box["height"] >= 44


def test_a_comment_being_typed_survives_the_live_refresh(
        dashboard: tuple[str, Dashboard], browser: Any) -> None:
    http, _ = dashboard
    page = _login(browser, http, PHONE)
    page.clock.install()
    page.goto(f"{http}/cabinets/gs-park/k1")
    page.wait_for_selector(".cabinet-alerts tr.alert")
    comment = page.locator("form.ack-form input[name=comment]").first
    comment.click()
    comment.type("Hausmeister ist unterw")
    page.clock.run_for(REFRESH_MS * 2)  # two refreshes while typing
    assert comment.input_value() == "Hausmeister ist unterw"
    assert page.locator("#live").get_attribute("data-paused") == "editing"

    comment.blur()  # unsent text, no focus: still kept
    page.clock.run_for(REFRESH_MS)
    assert page.locator("form.ack-form input[name=comment]").first.input_value() == \
        "Hausmeister ist unterw"

    page.locator("form.ack-form input[name=comment]").first.fill("")  # emptied: refreshes again
    page.locator("h1").click()
    page.clock.run_for(REFRESH_MS)
    page.wait_for_function("document.getElementById('live').dataset.updated")
    assert page.locator("#live").get_attribute("data-paused") is None


def test_a_collector_that_hears_nothing_says_so_until_it_hears_again(
        dashboard: tuple[str, Dashboard], browser: Any) -> None:
    http, _ = dashboard
    _SILENT[0] = datetime.now(UTC) - timedelta(minutes=5)
    try:
        page = _login(browser, http, PHONE)
        page.clock.install()
        page.goto(f"{http}/")  # the live refresh's timer on the installed clock
        notice = page.locator("#live p.warn[role=status]")
        assert "Was hier steht, kann veraltet sein." in notice.inner_text()
        _no_sideways_scrolling(page)
        _SILENT[0] = None  # the broker is back: the next live refresh takes the notice away
        page.clock.run_for(REFRESH_MS)
        page.wait_for_function("document.getElementById('live').dataset.updated")
        assert notice.count() == 0
        # the overview without a filter refreshes: its selects showing their first option is no
        # edit (it was taken for one, and the unfiltered overview never refreshed)
        assert page.evaluate("document.getElementById('live').dataset.paused") is None
    finally:
        _SILENT[0] = None


@pytest.mark.parametrize("path", ["/", "/schools/gs-park", "/cabinets/gs-park/k1",
                                  "/cabinets/gs-park/k1/slots/13"])
def test_every_live_page_refreshes_while_nobody_types(
        dashboard: tuple[str, Dashboard], browser: Any, path: str) -> None:
    """Nothing typed or chosen: the refresh runs and no "paused" note shows (a form's untouched
    defaults, a select on its first option, are no edit)."""
    http, _ = dashboard
    page = _login(browser, http, PHONE)
    page.clock.install()
    page.goto(f"{http}{path}")  # the live refresh's timer on the installed clock
    page.clock.run_for(REFRESH_MS)
    page.wait_for_function("document.getElementById('live').dataset.updated")
    assert page.evaluate("document.getElementById('live').dataset.paused") is None
