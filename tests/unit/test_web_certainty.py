"""Certainty and evidence on the dashboard: local times in German, the slot marks, the power-only
notice, the "not confirmed" list, and the overview's counts (issue 14, items 1 and 2)."""

from __future__ import annotations

import asyncio
import re
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
    Sensing,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
)
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import Auth, Role, Scope, User, UserStore
from server.fleet import Fleet, SlotView
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard, texts
from server.web.certainty import mark_of
from server.web.localtime import duration_text, long_time, short_time
from server.web.overview import build_overview
from tests.support.inventory import tagged_fleet

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # a Wednesday, 09:00 in Berlin
UNSEEN = datetime(2026, 12, 1, 12, 5, tzinfo=UTC)  # Tuesday 13:05 in Berlin
LAST_DRAW = datetime(2026, 11, 30, 22, 40, tzinfo=UTC)  # Monday 23:40 in Berlin
WINDOW_S = 5 * 86400.0
S, C = SlotState, Certainty
ORG = Organisation.model_validate({
    "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nord"}],
    "schools": [{"site": "gs-park", "name": "Grundschule am Park", "municipality": "nord"}],
    "cabinets": [{"school": "gs-park", "id": "k1", "name": "Raum 12",
                  "slots": {1: "GS-PARK-0001", 3: "GS-PARK-0003"}},
                 {"school": "gs-park", "id": "k2", "name": "Raum 14"}],
})


# -- local time and durations ---------------------------------------------------------------------

@pytest.mark.parametrize(("moment", "lang", "expected"), [
    (UNSEEN, "de", "Di 13:05"),
    (UNSEEN, "en", "Tue 13:05"),
    (NOW, "de", "Mi 09:00"),
    (datetime(2026, 11, 24, 12, 5, tzinfo=UTC), "de", "Di 24.11. 13:05"),  # more than 6 days ago
    (datetime(2026, 11, 24, 12, 5, tzinfo=UTC), "en", "Tue 24 Nov 13:05"),
    (datetime(2025, 12, 30, 23, 30, tzinfo=UTC), "de", "Mi 31.12.2025 00:30"),
    (datetime(2026, 12, 1, 12, 5), "de", "Di 13:05"),  # naive: taken as UTC
    (None, "de", "–"),
])
def test_short_local_time(moment: datetime | None, lang: str, expected: str) -> None:
    assert short_time(moment, BERLIN, NOW, lang) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("moment", "lang", "expected"), [
    (UNSEEN, "de", "Dienstag, 1. Dezember 2026, 13:05 Uhr"),
    (UNSEEN, "en", "Tuesday, 1 December 2026, 13:05"),
    (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "de", "Sonntag, 29. März 2026, 03:30 Uhr"),  # CEST
    (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "de", "Sonntag, 29. März 2026, 01:30 Uhr"),  # CET
    (None, "en", "–"),
])
def test_long_local_time(moment: datetime | None, lang: str, expected: str) -> None:
    assert long_time(moment, BERLIN, lang) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("seconds", "de", "en"), [
    (WINDOW_S, "5 Tage", "5 days"), (86400, "1 Tag", "1 day"), (2.5 * 86400, "2,5 Tage", "2.5 days"),
    (12 * 3600, "12 Stunden", "12 hours"), (3600, "1 Stunde", "1 hour"),
])
def test_durations(seconds: float, de: str, en: str) -> None:
    assert (duration_text(seconds, "de"), duration_text(seconds, "en")) == (de, en)


def test_every_text_has_both_languages() -> None:
    assert set(texts._DE) == set(texts._EN)
    for key in texts._DE:
        assert texts._DE[key] and texts._EN[key], key


# -- the marks -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("slot", "symbol", "key", "since"), [
    (SlotView(1, None, S.CHARGED, 0.0, NOW, C.PROBABLE, LAST_DRAW, UNSEEN), "≈", "mark.unconfirmed",
     UNSEEN),
    (SlotView(1, None, S.CHARGED, 0.0, NOW, C.PROBABLE, None, None), "≈", "mark.unconfirmed.plain",
     None),
    (SlotView(1, None, S.EMPTY, 0.0, NOW, C.PROBABLE, LAST_DRAW, UNSEEN), "≈", "mark.no_sign",
     LAST_DRAW),
    (SlotView(1, None, S.PRESENT_IDLE, 0.0, NOW, C.CANNOT_TELL), "?", "mark.idle_unclear", None),
    (SlotView(1, None, S.UNKNOWN, None, NOW, C.CANNOT_TELL), "?", "mark.cannot_tell", None),
    (SlotView(1, None, S.UNKNOWN, None, NOW), "?", "mark.cannot_tell", None),  # an older agent
    (SlotView(1, None, S.CHARGED, 0.0, NOW), "", "", None),  # an older agent: as it came
    (SlotView(1, None, S.CHARGED, 0.0, NOW, C.CERTAIN, LAST_DRAW), "", "", None),
])
def test_the_mark_of_a_slot(slot: SlotView, symbol: str, key: str, since: datetime | None) -> None:
    mark = mark_of(slot)
    assert (mark.symbol, mark.key, mark.since) == (symbol, key, since)
    assert mark.shown == bool(symbol)
    if key:
        assert key in texts._DE and key in texts._EN


# -- pages and counts ------------------------------------------------------------------------------

def _env(cabinet: str, seq: int) -> dict[str, object]:
    return {"v": 1, "site": "gs-park", "cabinet": cabinet, "boot_id": "c" * 32, "seq": seq,
            "ts": NOW - timedelta(seconds=30), "clock_synced": True}


def _cabinet(fleet: Fleet, cabinet: str, sensing: Sensing | None,
             slots: list[SlotSnapshot]) -> None:
    fleet.apply(StatusMessage(**_env(cabinet, 0), status=AgentStatus.ONLINE), NOW)  # type: ignore[arg-type]
    fleet.apply(BirthMessage(**_env(cabinet, 1), agent_version="0.2", config_hash="00000000",  # type: ignore[arg-type]
                             cabinet_model="ladewache-16", slot_count=len(slots),
                             slots=[SlotInfo(slot=s.slot) for s in slots], poll_interval_s=1.0,
                             telemetry_interval_s=10.0, sensing=sensing), NOW)
    fleet.apply(StateMessage(**_env(cabinet, 2), slots=slots, door=DoorState.CLOSED,  # type: ignore[arg-type]
                             temperature_c=20.0, mains=MainsState.ON, devices=[]), NOW)


def _snap(slot: int, state: SlotState, certainty: Certainty | None,
          last_draw: datetime | None = None, unseen: datetime | None = None) -> SlotSnapshot:
    return SlotSnapshot(slot=slot, state=state, power_w=0.0, since=NOW - timedelta(hours=20),
                        certainty=certainty, last_draw_at=last_draw, unseen_since=unseen)


def _fleet() -> Fleet:
    fleet = tagged_fleet(ORG)
    _cabinet(fleet, "k1", Sensing(slot_power=True, presence=False, door=True,
                                  evidence_window_s=WINDOW_S), [
        _snap(1, S.CHARGED, C.PROBABLE, LAST_DRAW, UNSEEN),
        _snap(2, S.CHARGED, C.CERTAIN, LAST_DRAW),
        _snap(3, S.EMPTY, C.PROBABLE, LAST_DRAW, UNSEEN),
        _snap(4, S.UNKNOWN, C.CANNOT_TELL),
        _snap(5, S.CHARGED, C.PROBABLE, LAST_DRAW, UNSEEN),
    ])
    _cabinet(fleet, "k2", Sensing(slot_power=True, presence=True, door=True), [
        _snap(1, S.PRESENT_IDLE, C.CANNOT_TELL), _snap(2, S.EMPTY, C.CERTAIN)])
    _cabinet(fleet, "k3", None, [_snap(1, S.UNKNOWN, None), _snap(2, S.CHARGED, None)])  # old agent
    return fleet


def _sources(fleet: Fleet) -> ApiSources:
    store = UserStore(open_store(None))
    store.add_user(User("admin", Role.ADMIN), "a-long-password", NOW)
    return ApiSources(fleet=fleet, alerts=StoredState.in_memory(), clock=lambda: NOW, org=ORG,
                      ingest_stats=lambda **_: IngestStats(0, 0, {}),
                      mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                      tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(store, lambda: NOW))


@pytest.fixture
def dash() -> Dashboard:
    return Dashboard(_sources(_fleet()))


def _get(app: FastAPI, token: str, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            return await client.get(path)
    return asyncio.run(call())


@pytest.fixture
def get(dash: Dashboard) -> object:
    app = create_app(dash.sources)
    install_dashboard(app, dash)
    token = dash.sources.auth.store.create_token("admin", "t", NOW)
    return lambda path: _get(app, token, path)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_overview_counts_unconfirmed_cannot_tell_and_power_only(dash: Dashboard) -> None:
    overview = dash.overview(Scope(None, True))
    rows = {r.cabinet: r.counts for r in overview.municipalities[0].schools["gs-park"].cabinets}
    assert (rows["k1"].unconfirmed, rows["k1"].cannot_tell, rows["k1"].power_only) == (2, 1, 1)
    assert (rows["k2"].unconfirmed, rows["k2"].cannot_tell, rows["k2"].power_only) == (0, 1, 0)
    assert (rows["k3"].unconfirmed, rows["k3"].cannot_tell, rows["k3"].power_only) == (0, 1, 0)
    assert (overview.counts.unconfirmed, overview.counts.cannot_tell,
            overview.counts.power_only) == (2, 3, 1)
    assert overview == build_overview(dash.index, dash.sources.fleet.snapshot(), {},
                                      lambda _: True)


def test_the_overview_page_shows_the_columns_and_the_power_only_marker(get: object) -> None:
    html = get("/").text  # type: ignore[operator]
    assert "nicht bestätigt" in html and "nicht beurteilbar" in html
    k1 = re.search(r'<tr class="cabinet[^"]*" data-cabinet="gs-park/k1">.*?</tr>', html, re.S)
    assert k1 is not None and "nur Strom" in k1.group(0)
    assert re.search(r'<td class="num unconfirmed uncertain"[^>]*>2</td>', k1.group(0))
    k2 = re.search(r'<tr class="cabinet[^"]*" data-cabinet="gs-park/k2">.*?</tr>', html, re.S)
    assert k2 is not None and "nur Strom" not in k2.group(0)
    assert get("/api/overview").json()["counts"]["unconfirmed"] == 2  # type: ignore[operator]


def test_the_cabinet_page_marks_slots_and_lists_the_unconfirmed(get: object) -> None:
    html = get("/cabinets/gs-park/k1").text  # type: ignore[operator]
    text = _text(html)
    assert ("Dieser Schrank misst nur Strom: ob ein volles iPad entnommen wurde, zeigt sich erst, "
            "wenn es nachlädt (bis zu 5 Tage). Präsenzschalter oder Steckererkennung geben bis zur "
            "Rückgabeprüfung eine sichere Antwort.") in text
    tile = re.search(r'<a role="listitem"[^>]*data-slot="1"[^>]*>.*?</a>', html, re.S)
    assert tile is not None and 'data-certainty="probable"' in tile.group(0)
    assert "≈" in tile.group(0) and "nicht bestätigt seit Di 13:05" in tile.group(0)
    assert "kein Lebenszeichen seit Mo 23:40" in html  # slot 3: empty, probable
    assert re.search(r'data-slot="4"[^>]*data-certainty="cannot_tell"', html)
    assert re.search(r'data-slot="2"[^>]*data-certainty="certain"', html)
    # the list: cabinet name, slot, asset tag (the organisation's), since when
    assert "Raum 12 · Fach 1 · GS-PARK-0001 : nicht bestätigt seit Di 13:05" in text
    assert "Raum 12 · Fach 5 : nicht bestätigt seit Di 13:05" in text
    assert "Fach 3 ·" not in text.split("Nicht bestätigt")[-1]  # empty/probable is not listed
    live = get("/cabinets/gs-park/k1?partial=1").text  # type: ignore[operator]  # the refresh
    assert "nicht bestätigt seit Di 13:05" in live and "misst nur Strom" in live
    english = _text(get("/cabinets/gs-park/k1?lang=en").text)  # type: ignore[operator]
    assert "not confirmed since Tue 13:05" in english and "(up to 5 days)" in english


def test_cabinets_with_presence_inputs_or_of_older_agents_get_no_notice(get: object) -> None:
    for cabinet in ("k2", "k3"):
        html = get(f"/cabinets/gs-park/{cabinet}").text  # type: ignore[operator]
        assert "misst nur Strom" not in html
        assert "Alle geladenen iPads sind bestätigt." in html
    assert "da, Ladezustand unklar" in get("/cabinets/gs-park/k2").text  # type: ignore[operator]


def test_the_slot_page_shows_the_evidence_in_local_time(get: object) -> None:
    text = _text(get("/cabinets/gs-park/k1/slots/1").text)  # type: ignore[operator]
    assert "Gewissheit ≈ wahrscheinlich: nicht bestätigt seit Di 13:05" in text
    assert "zuletzt Strom gezogen Montag, 30. November 2026, 23:40 Uhr" in text
    assert "unbeobachtet seit Dienstag, 1. Dezember 2026, 13:05 Uhr" in text
    assert "nicht bestätigt seit Di 13:05" in get(  # type: ignore[operator]
        "/cabinets/gs-park/k1/slots/1?partial=1").text
    certain = _text(get("/cabinets/gs-park/k1/slots/2").text)  # type: ignore[operator]
    assert "Gewissheit sicher" in certain and "unbeobachtet seit –" in certain


def test_the_school_page_lists_every_unconfirmed_slot(get: object) -> None:
    response = get("/schools/gs-park")  # type: ignore[operator]
    assert response.status_code == 200
    text = _text(response.text)
    assert "Grundschule am Park" in text and "Nicht bestätigt (2)" in text
    assert "Raum 12 · Fach 1 · GS-PARK-0001 : nicht bestätigt seit Di 13:05" in text
    assert "Nicht bestätigt" in get("/schools/gs-park?partial=1").text  # type: ignore[operator]
    assert get("/schools/nowhere").status_code == 404  # type: ignore[operator]
