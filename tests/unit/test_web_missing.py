"""The "Fehlende iPads" list (issue 16, item 3): which alerts and slots count, scope and filters,
certainty in words, ordering; the page, its print view and the CSV for German Excel."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Certainty,
    DoorState,
    MainsState,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
)
from server.alerts.model import Alert
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import Auth, Role, Scope, User, UserStore
from server.fleet import Fleet
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from server.web.context import OutOfScope
from server.web.missing import Found, MissingIPad, by_school, missing_ipads
from server.web.missing_pages import csv_rows, csv_time, select
from tests.support.inventory import tagged_fleet

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # Wednesday 09:00 in Berlin
CHECK = "2026-12-01T16:30:00+01:00"  # Tuesday's return check
AT_CHECK = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
TAKEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # Tuesday 13:00: seen taken out
UNSEEN = datetime(2026, 11, 26, 9, 15, tzinfo=UTC)  # Thursday 26.11. 10:15: door opened
S, C = SlotState, Certainty
INJECTION = "=HYPERLINK(\"http://x\")"
ORG = Organisation.model_validate({
    "district": "Landkreis Musterland", "district_team": "it",
    "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nord"}, {"id": "sued", "name": "Süd"}],
    "schools": [{"site": "gs-park", "name": "Grundschule am Park", "municipality": "nord"},
                {"site": "gs-linde", "name": "Grundschule Linde", "municipality": "nord"},
                {"site": "gs-berg", "name": "Grundschule Berg", "municipality": "sued"}],
    "cabinets": [
        {"school": "gs-park", "id": "k1", "name": "Raum 12",
         "slots": {1: "PARK-0001", 2: "PARK-0002", 3: "PARK-0003", 4: "PARK-0004"}},
        {"school": "gs-park", "id": "k2", "name": "Raum 2", "slots": {1: INJECTION}},
        {"school": "gs-linde", "id": "k1", "name": "Raum 5", "slots": {1: "LIN-1", 3: "LIN-3",
                                                                       4: "LIN-4"}},
        {"school": "gs-berg", "id": "k1", "name": "Aula", "slots": {1: "BERG-1"}},
    ],
})


def _env(site: str, cabinet: str, seq: int) -> dict[str, object]:
    return {"v": 1, "site": site, "cabinet": cabinet, "boot_id": "d" * 32, "seq": seq,
            "ts": NOW - timedelta(seconds=30), "clock_synced": True}


def _cabinet(fleet: Fleet, site: str, cabinet: str, slots: list[SlotSnapshot]) -> None:
    fleet.apply(StatusMessage(**_env(site, cabinet, 0), status=AgentStatus.ONLINE), NOW)  # type: ignore[arg-type]
    fleet.apply(BirthMessage(**_env(site, cabinet, 1), agent_version="0.2",  # type: ignore[arg-type]
                             config_hash="00000000", cabinet_model="ladewache-16",
                             slot_count=len(slots), slots=[SlotInfo(slot=s.slot) for s in slots],
                             poll_interval_s=1.0, telemetry_interval_s=10.0), NOW)
    fleet.apply(StateMessage(**_env(site, cabinet, 2), slots=slots, door=DoorState.CLOSED,  # type: ignore[arg-type]
                             temperature_c=20.0, mains=MainsState.ON, devices=[]), NOW)


def _snap(slot: int, state: SlotState, certainty: Certainty, since: datetime = TAKEN,
          unseen: datetime | None = None) -> SlotSnapshot:
    return SlotSnapshot(slot=slot, state=state, power_w=0.0, since=since, certainty=certainty,
                        last_draw_at=UNSEEN - timedelta(hours=1) if unseen else None,
                        unseen_since=unseen)


def _fleet() -> Fleet:
    fleet = tagged_fleet(ORG)
    _cabinet(fleet, "gs-park", "k1", [_snap(1, S.EMPTY, C.CERTAIN), _snap(2, S.CHARGING, C.CERTAIN),
                                      _snap(3, S.CHARGED, C.CERTAIN), _snap(4, S.EMPTY, C.CERTAIN)])
    _cabinet(fleet, "gs-park", "k2", [_snap(1, S.EMPTY, C.PROBABLE, NOW - timedelta(hours=9),
                                            UNSEEN)])
    _cabinet(fleet, "gs-linde", "k1", [
        _snap(1, S.EMPTY, C.PROBABLE, NOW - timedelta(hours=3), UNSEEN),  # judged gone overnight
        _snap(2, S.EMPTY, C.PROBABLE, NOW - timedelta(hours=3), UNSEEN),  # no iPad belongs here
        _snap(3, S.CHARGED, C.PROBABLE, NOW - timedelta(days=1), UNSEEN),  # only not confirmed
        _snap(4, S.EMPTY, C.CERTAIN),  # out in class: no check yet, no list
    ])
    _cabinet(fleet, "gs-berg", "k1", [_snap(1, S.EMPTY, C.CERTAIN)])
    return fleet


def _alert(site: str, cabinet: str, slot: int, tag: str, reason: str = "empty",
           starts: datetime = AT_CHECK + timedelta(minutes=5), name: str = "ipad_not_returned",
           **extra: str) -> Alert:
    labels = {"alertname": name, "site": site, "cabinet": cabinet, "slot": str(slot),
              "asset_tag": tag}
    return Alert(labels, {"check": CHECK, "reason": reason, **extra}, min(starts, AT_CHECK),
                 starts)


def _alerts() -> StoredState:
    store = StoredState.in_memory()
    store.put_active(_alert("gs-park", "k1", 1, "PARK-0001"))  # firing, still empty
    back = _alert("gs-park", "k1", 2, "PARK-0002")  # back this morning at 08:30
    store.put_active(back)
    store.resolve(back.fingerprint, datetime(2026, 12, 2, 7, 30, tzinfo=UTC))
    yesterday = Alert({"alertname": "ipad_not_returned", "site": "gs-park", "cabinet": "k1",
                       "slot": "3", "asset_tag": "PARK-0003"}, {"check": CHECK, "reason": "empty"},
                      AT_CHECK - timedelta(days=1), AT_CHECK - timedelta(days=1))
    store.put_active(yesterday)  # back the day before: not today's news
    store.resolve(yesterday.fingerprint, AT_CHECK - timedelta(hours=20))
    store.put_active(_alert("gs-park", "k1", 4, "PARK-0004",  # within the grace: pending
                            starts=NOW + timedelta(minutes=3)))
    store.put_active(_alert("gs-park", "k2", 1, INJECTION, "no_sign",
                            unseen_since=UNSEEN.isoformat()))
    store.put_active(_alert("gs-park", "k1", 3, "PARK-0003", name="door_open"))
    store.put_active(_alert("gs-berg", "k1", 1, "BERG-1"))
    return store


def _build(sees: Callable[[str], bool] = lambda _: True) -> list[MissingIPad]:
    dash = Dashboard(sources())
    return missing_ipads(dash.sources.fleet.snapshot(), dash.sources.alerts.all(), dash.index,
                         sees, NOW, BERLIN)


# -- the list --------------------------------------------------------------------------------------

def test_which_alerts_and_slots_count_in_which_order() -> None:
    items = _build()
    assert [(i.school, i.cabinet_name, i.slot, i.asset_tag, i.certainty, i.found)
            for i in items] == [
        ("Grundschule am Park", "Raum 2", 1, INJECTION, C.PROBABLE, Found.CHECK),
        ("Grundschule am Park", "Raum 12", 1, "PARK-0001", C.CERTAIN, Found.CHECK),
        ("Grundschule am Park", "Raum 12", 2, "PARK-0002", C.CERTAIN, Found.CHECK),
        ("Grundschule Linde", "Raum 5", 1, "LIN-1", C.PROBABLE, Found.EVIDENCE),
        ("Grundschule Berg", "Aula", 1, "BERG-1", C.CERTAIN, Found.CHECK),
    ]
    by_key = {i.key: i for i in items}
    assert by_key[("gs-park", "k1", 1)].since == TAKEN  # still empty: since it was taken out
    assert by_key[("gs-park", "k1", 1)].back_at is None
    assert by_key[("gs-park", "k1", 1)].check == datetime.fromisoformat(CHECK)
    assert by_key[("gs-park", "k1", 2)].back_at == datetime(2026, 12, 2, 7, 30, tzinfo=UTC)
    assert by_key[("gs-park", "k2", 1)].since == UNSEEN  # may have left from the door opening
    assert by_key[("gs-linde", "k1", 1)].since == UNSEEN
    assert by_key[("gs-linde", "k1", 1)].check is None
    assert by_key[("gs-park", "k2", 1)].municipality == "Nord"


def test_a_firing_alert_wins_over_a_resolved_one_of_the_same_slot() -> None:
    store = StoredState.in_memory()
    earlier = _alert("gs-berg", "k1", 1, "BERG-1")
    store.put_active(earlier)
    store.resolve(earlier.fingerprint, NOW - timedelta(hours=2))
    store.put_active(Alert(earlier.labels, {"check": CHECK, "reason": "no_sign"},
                           NOW - timedelta(hours=1), NOW - timedelta(hours=1)))
    items = missing_ipads([], store.all(), Dashboard(sources()).index,
                          lambda _: True, NOW, BERLIN)
    assert [(i.slot, i.certainty, i.back_at) for i in items] == [(1, C.PROBABLE, None)]


def test_the_list_keeps_to_the_sites_it_may_see() -> None:
    assert {i.site for i in _build(lambda s: s == "gs-berg")} == {"gs-berg"}
    assert {i.site for i in _build(lambda s: s in {"gs-park", "gs-linde"})} == {"gs-park",
                                                                               "gs-linde"}
    assert _build(lambda _: False) == []


def test_by_school_cuts_the_list_in_order() -> None:
    parts = by_school(_build())
    assert [(p.school, len(p.items)) for p in parts] == [
        ("Grundschule am Park", 3), ("Grundschule Linde", 1), ("Grundschule Berg", 1)]


@pytest.mark.parametrize(("scope", "school", "municipality", "sites", "title"), [
    (Scope(None, True), "", "", None, "Landkreis Musterland"),
    (Scope(None, True), "gs-berg", "", {"gs-berg"}, "Grundschule Berg"),
    (Scope(None, True), "", "nord", {"gs-park", "gs-linde"}, "Nord"),
    (Scope(None, True), "gs-park", "nord", {"gs-park"}, "Grundschule am Park"),
    (Scope(frozenset({"gs-park", "gs-linde"}), True), "", "", {"gs-park", "gs-linde"}, "Nord"),
    (Scope(frozenset({"gs-park", "gs-linde"}), True), "gs-linde", "", {"gs-linde"},
     "Grundschule Linde"),
    (Scope(frozenset({"gs-park"}), False), "", "", {"gs-park"}, "Grundschule am Park"),
    (Scope(frozenset({"gs-park"}), False), "", "nord", {"gs-park"}, "Grundschule am Park"),
])
def test_filters_narrow_the_scope(scope: Scope, school: str, municipality: str,
                                  sites: set[str] | None, title: str) -> None:
    selection = select(Dashboard(sources()), scope, school, municipality)
    assert (selection.sites, selection.title) == (
        None if sites is None else frozenset(sites), title)


@pytest.mark.parametrize(("scope", "school", "municipality"), [
    (Scope(frozenset({"gs-park", "gs-linde"}), True), "gs-berg", ""),
    (Scope(frozenset({"gs-park", "gs-linde"}), True), "", "sued"),
    (Scope(frozenset({"gs-park"}), False), "gs-linde", ""),
    (Scope(None, True), "gs-berg", "nord"),  # not a school of that municipality
])
def test_filters_outside_the_scope_are_refused(scope: Scope, school: str,
                                               municipality: str) -> None:
    with pytest.raises(OutOfScope):
        select(Dashboard(sources()), scope, school, municipality)


def test_an_unknown_municipality_is_not_found() -> None:
    with pytest.raises(LookupError):
        select(Dashboard(sources()), Scope(None, True), "", "atlantis")


@pytest.mark.parametrize(("lang", "expected"), [
    ("de", "02.12.2026 09:00"), ("en", "2 Dec 2026 09:00")])
def test_csv_times_are_local(lang: str, expected: str) -> None:
    assert csv_time(NOW, BERLIN, lang) == expected  # type: ignore[arg-type]
    assert csv_time(datetime(2026, 7, 1, 8, 0, tzinfo=UTC), BERLIN, "de") == "01.07.2026 10:00"
    assert csv_time(None, BERLIN, "de") == ""


def test_certainty_in_words() -> None:
    rows = list(csv.reader(io.StringIO(csv_rows(_build(), BERLIN, "de")), delimiter=";"))
    assert [r[6] for r in rows[1:]] == ["wahrscheinlich", "sicher", "sicher", "wahrscheinlich",
                                        "sicher"]
    english = list(csv.reader(io.StringIO(csv_rows(_build(), BERLIN, "en")), delimiter=";"))
    assert [r[6] for r in english[1:]] == ["probable", "certain", "certain", "probable", "certain"]


# -- HTTP ------------------------------------------------------------------------------------------

def sources() -> ApiSources:
    store = UserStore(open_store(None))
    for user in (User("admin", Role.ADMIN), User("tech", Role.TECHNICIAN, municipality="nord"),
                 User("park", Role.VIEWER, school="gs-park")):
        store.add_user(user, "a-long-password", NOW)
    return ApiSources(fleet=_fleet(), alerts=_alerts(), clock=lambda: NOW, org=ORG,
                      ingest_stats=lambda **_: IngestStats(0, 0, {}),
                      mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                      tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(store, lambda: NOW))


Get = Callable[..., httpx.Response]


@pytest.fixture(scope="module")
def get() -> Get:
    dash = Dashboard(sources())
    app = create_app(dash.sources)
    install_dashboard(app, dash)
    tokens = {name: dash.sources.auth.store.create_token(name, "t", NOW)
              for name in ("admin", "tech", "park")}

    def call(path: str, user: str | None = "admin") -> httpx.Response:
        return _get(app, tokens[user] if user else None, path)
    return call


def _get(app: FastAPI, token: str | None, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers=headers) as client:
            return await client.get(path)
    return asyncio.run(call())


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_page_lists_the_missing_ipads_in_german(get: Get) -> None:
    response = get("/missing")
    assert response.status_code == 200
    text = _text(response.text)
    assert "Fehlende iPads – Landkreis Musterland" in text
    assert "Stand: Mittwoch, 2. Dezember 2026, 09:00 Uhr" in text
    assert "Raum 12 1 PARK-0001 Di 13:00 sicher bei der Rückgabeprüfung Di 16:30 nicht zurück" \
        in text
    assert "wieder da seit Mi 08:30" in text
    assert "Raum 5 1 LIN-1 Do 10:15 ≈ wahrscheinlich kein Lebenszeichen im Beweisfenster" \
        in text
    for raw in ("gs-park", "gs-linde", "k1", "k2", "2026-12", "T16:30"):
        assert raw not in text, raw  # names, not ids; local times, not ISO
    assert re.findall(r'<section class="missing-school" data-site="([^"]+)"', response.text) == [
        "gs-park", "gs-linde", "gs-berg"]
    assert 'href="/api/export/missing.csv?lang=de"' in response.text
    assert 'href="/missing?print=1"' in response.text
    assert '<link rel="stylesheet" href="/static/print.css" media="print">' in response.text
    assert "LIN-3" not in text and "LIN-4" not in text  # not confirmed / out in class


def test_the_page_in_english(get: Get) -> None:
    text = _text(get("/missing?lang=en").text)
    assert "Missing iPads – Landkreis Musterland" in text
    assert "As of Wednesday, 2 December 2026, 09:00" in text
    assert "not back at the return check Tue 16:30" in text and "back since Wed 08:30" in text
    assert "probable" in text and "certain" in text


def test_the_print_view_has_the_school_and_date_and_no_navigation_on_paper(get: Get) -> None:
    response = get("/missing?school=gs-park&print=1")
    assert response.status_code == 200
    html = response.text
    assert '<link rel="stylesheet" href="/static/print.css" media="all">' in html
    text = _text(html)
    assert "Fehlende iPads – Grundschule am Park" in text
    assert "Stand: Mittwoch, 2. Dezember 2026, 09:00 Uhr" in text
    assert "Grundschule Berg" not in text and "class=\"missing-filter\"" not in html
    assert 'href="/missing?school=gs-park"' in html  # back to the list
    css = get("/static/print.css", None).text
    assert "body > header" in css and "table-header-group" in css and "size: A4" in css


def test_the_page_keeps_to_the_scope(get: Get) -> None:
    tech = _text(get("/missing", "tech").text)
    assert "Fehlende iPads – Nord" in tech and "Grundschule Linde" in tech
    assert "Grundschule Berg" not in tech
    viewer = _text(get("/missing", "park").text)
    assert "Fehlende iPads – Grundschule am Park" in viewer and "Grundschule Linde" not in viewer
    assert get("/missing?school=gs-berg", "tech").status_code == 403
    assert get("/missing?municipality=sued", "park").status_code == 403
    assert get("/missing?municipality=atlantis").status_code == 404
    assert get("/missing?school=gs-linde", "tech").status_code == 200
    login = get("/missing?school=gs-park", None)
    assert login.status_code == 303
    assert login.headers["location"] == "/login?next=/missing%3Fschool%3Dgs-park"


def test_the_csv_opens_in_german_excel(get: Get) -> None:
    response = get("/api/export/missing.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="fehlende-ipads-2026-12-02.csv"' in response.headers["content-disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    body = raw.decode("utf-8")[1:]
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert rows[0] == ["Gemeinde", "Schule", "Schrank", "Fach", "Inventarnr.", "fehlt seit",
                       "Gewissheit", "Befund", "Rückgabeprüfung", "zurück seit"]
    assert rows[1] == ["Nord", "Grundschule am Park", "Raum 2", "1", "'" + INJECTION,
                       "26.11.2026 10:15", "wahrscheinlich", "Rückgabeprüfung", "01.12.2026 16:30",
                       ""]
    assert rows[3][-1] == "02.12.2026 08:30"  # back this morning
    assert rows[4][7] == "Indizien (kein Nachladen)"
    assert len(rows) == 6
    assert body.splitlines()[0].startswith('"Gemeinde";"Schule";')
    assert not re.search(r"\d{4}-\d\d-\d\d", body)  # no ISO dates or timestamps
    for raw_id in ("gs-park", "gs-berg", '"k1"', '"k2"', "nord"):
        assert raw_id not in body, raw_id


def test_the_csv_in_english_and_in_scope(get: Get) -> None:
    rows = list(csv.reader(io.StringIO(
        get("/api/export/missing.csv?lang=en").content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Municipality", "School", "Cabinet"]
    assert rows[2][5:8] == ["1 Dec 2026 13:00", "certain", "return check"]
    viewer = get("/api/export/missing.csv", "park").content.decode("utf-8-sig")
    assert "Grundschule am Park" in viewer and "Grundschule Berg" not in viewer
    tech = get("/api/export/missing.csv?municipality=nord&school=gs-linde", "tech")
    assert [r[1] for r in csv.reader(io.StringIO(tech.content.decode("utf-8-sig")),
                                     delimiter=";")][1:] == ["Grundschule Linde"]
    assert get("/api/export/missing.csv?school=gs-berg", "tech").status_code == 403
    assert get("/api/export/missing.csv?municipality=atlantis").status_code == 404
    assert get("/api/export/missing.csv", None).status_code == 401


def test_the_overview_links_to_the_list(get: Get) -> None:
    assert '<a href="/missing">Fehlende iPads</a>' in get("/").text
