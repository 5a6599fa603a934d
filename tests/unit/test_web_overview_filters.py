"""The overview's filters by municipality and school (within the caller's scope), its counts per
state, and silences described in words (issue 16, item 4)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    DoorState,
    MainsState,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
)
from server.alerts import rules
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
from server.web.overview import OrgIndex, build_overview, overview_filter
from server.web.silences import describe_silence
from server.web.texts import translator

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # Wednesday, 09:00 in Berlin
S = SlotState
ORG = Organisation.model_validate({
    "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nordheim"}, {"id": "sued", "name": "Südstadt"}],
    "schools": [{"site": "gs-park", "name": "Grundschule am Park", "municipality": "nord"},
                {"site": "gs-linde", "name": "Grundschule Lindenplatz", "municipality": "nord"},
                {"site": "gs-sued", "name": "Grundschule Süd", "municipality": "sued"}],
    "cabinets": [{"school": "gs-park", "id": "k1", "name": "Raum 12"},
                 {"school": "gs-linde", "id": "k1", "name": "Raum 3"},
                 {"school": "gs-sued", "id": "k1", "name": "Bibliothek"}],
})
INDEX = OrgIndex.of(ORG)
NORD = frozenset({"gs-park", "gs-linde"})


# -- the filter, pure --------------------------------------------------------------------------------

@pytest.mark.parametrize(("scope", "municipality", "school", "chosen", "sites", "schools"), [
    (None, "", "", ("", ""), None, ["gs-linde", "gs-park", "gs-sued"]),
    (None, "nord", "", ("nord", ""), NORD, ["gs-linde", "gs-park"]),
    (None, "nord", "gs-park", ("nord", "gs-park"), {"gs-park"}, ["gs-linde", "gs-park"]),
    (None, "", "gs-sued", ("", "gs-sued"), {"gs-sued"}, ["gs-linde", "gs-park", "gs-sued"]),
    (None, "nord", "gs-sued", ("nord", ""), NORD, ["gs-linde", "gs-park"]),  # not in nord: dropped
    (None, "atlantis", "", ("", ""), None, ["gs-linde", "gs-park", "gs-sued"]),
    # a technician of nord: nothing of sued, whatever the link says
    (NORD, "", "", ("", ""), NORD, ["gs-linde", "gs-park"]),
    (NORD, "sued", "", ("", ""), NORD, ["gs-linde", "gs-park"]),
    (NORD, "", "gs-sued", ("", ""), NORD, ["gs-linde", "gs-park"]),
    (NORD, "", "gs-linde", ("", "gs-linde"), {"gs-linde"}, ["gs-linde", "gs-park"]),
    (frozenset({"gs-park"}), "", "gs-park", ("", "gs-park"), {"gs-park"}, ["gs-park"]),
])
def test_the_overview_filter_stays_within_the_scope(
        scope: frozenset[str] | None, municipality: str, school: str, chosen: tuple[str, str],
        sites: set[str] | None, schools: list[str]) -> None:
    got = overview_filter(INDEX, scope, municipality, school)
    assert (got.municipality, got.school) == chosen
    assert got.sites == (frozenset(sites) if sites is not None else None)
    assert sorted(site for site, _ in got.schools) == schools
    if scope is not None:
        assert got.sites is not None and got.sites <= scope


def test_the_filter_offers_names_in_order_and_builds_its_query() -> None:
    got = overview_filter(INDEX, None, "nord", "gs-park")
    assert got.municipalities == (("nord", "Nordheim"), ("sued", "Südstadt"))
    assert got.schools == (("gs-park", "Grundschule am Park"), ("gs-linde", "Grundschule Lindenplatz"))
    assert got.query == "municipality=nord&school=gs-park" and got.active
    assert overview_filter(INDEX, None).query == "" and not overview_filter(INDEX, None).active


# -- the dashboard ----------------------------------------------------------------------------------

def _cabinet(fleet: Fleet, site: str, states: list[SlotState]) -> None:
    env = {"v": 1, "site": site, "cabinet": "k1", "boot_id": "c" * 32,
           "ts": NOW - timedelta(seconds=30), "clock_synced": True}
    fleet.apply(StatusMessage(**env, seq=0, status=AgentStatus.ONLINE), NOW)  # type: ignore[arg-type]
    fleet.apply(BirthMessage(**env, seq=1, agent_version="0.2", config_hash="00000000",  # type: ignore[arg-type]
                             cabinet_model="ladewache-16", slot_count=len(states),
                             slots=[SlotInfo(slot=n) for n in range(1, len(states) + 1)],
                             poll_interval_s=1.0, telemetry_interval_s=10.0), NOW)
    fleet.apply(StateMessage(**env, seq=2, door=DoorState.CLOSED, temperature_c=20.0,  # type: ignore[arg-type]
                             mains=MainsState.ON, devices=[],
                             slots=[SlotSnapshot(slot=n, state=st, power_w=0.0,
                                                 since=NOW - timedelta(hours=1))
                                    for n, st in enumerate(states, 1)]), NOW)


@pytest.fixture
def dash() -> Dashboard:
    fleet = Fleet()
    _cabinet(fleet, "gs-park", [S.CHARGED, S.CHARGING, S.EMPTY, S.UNKNOWN])
    _cabinet(fleet, "gs-linde", [S.CHARGED, S.FAULT])
    _cabinet(fleet, "gs-sued", [S.UNKNOWN, S.UNKNOWN, S.CHARGED])
    store = UserStore(open_store(None))
    store.add_user(User("admin", Role.ADMIN), "a-long-password", NOW)
    store.add_user(User("tech", Role.TECHNICIAN, municipality="nord"), "a-long-password", NOW)
    state = StoredState.in_memory()
    door = Alert({"alertname": "door_open", "site": "gs-park", "cabinet": "k1"}, {},
                 NOW - timedelta(minutes=10), NOW - timedelta(minutes=10))
    state.put_active(door)
    state.add_silence(Silence({"alertname": "door_open", "site": "gs-park", "cabinet": "k1"},
                              NOW, NOW + timedelta(hours=4), "tech", "Hausmeister kommt",
                              SilenceKind.SILENCE, None, NOW))
    state.add_silence(Silence({"site": "gs-linde", "cabinet": "k1"}, NOW, NOW + timedelta(hours=2),
                              "tech", "", SilenceKind.TECHNICIAN, None, NOW))
    state.add_silence(Silence({"site": "gs-sued", "cabinet": "k1", "alertname": "ipad_not_charging",
                               "slot": "2", "asset_tag": "GS-SUED-0002"}, NOW,
                              NOW + timedelta(hours=1), "admin", "", SilenceKind.SILENCE, None, NOW))
    sources = ApiSources(fleet=fleet, alerts=state, state=state, clock=lambda: NOW, org=ORG,
                         ingest_stats=lambda **_: IngestStats(0, 0, {}),
                         mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK),
                         auth=Auth(store, lambda: NOW))
    return Dashboard(sources)


def _get(app: FastAPI, token: str, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            return await client.get(path)
    return asyncio.run(call())


def _getter(dash: Dashboard, user: str) -> object:
    app = create_app(dash.sources)
    install_dashboard(app, dash)
    token = dash.sources.auth.store.create_token(user, "t", NOW)
    return lambda path: _get(app, token, path)


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr class="cabinet[^"]*" data-cabinet="([^"]+)"', html)


def _count(html: str, name: str) -> str:
    found = re.search(rf'<li data-count="{name}"[^>]*>.*?<b>([^<]+)</b>', html, re.S)
    assert found is not None, name
    return found.group(1)


def test_filtered_counts_equal_the_counts_from_scratch(dash: Dashboard) -> None:
    for scope in (None, NORD):
        for municipality, school in (("", ""), ("nord", ""), ("sued", ""), ("", "gs-park")):
            chosen = overview_filter(dash.index, scope, municipality, school)
            got = dash.counts.build(dash.sources.fleet, {}, chosen.sites)
            sites = chosen.sites
            assert got == build_overview(dash.index, dash.sources.fleet.snapshot(), {},
                                         lambda site, s=sites: s is None or site in s)  # type: ignore[misc]


@pytest.mark.parametrize(("user", "query", "rows", "counts"), [
    ("admin", "", ["gs-linde/k1", "gs-park/k1", "gs-sued/k1"],
     {"online": "3/3", "charged": "3", "charging": "1", "missing": "1", "faulty": "1",
      "unknown": "3", "cannot_tell": "3", "alerts": "1"}),
    ("admin", "?municipality=nord", ["gs-linde/k1", "gs-park/k1"],
     {"online": "2/2", "charged": "2", "unknown": "1", "cannot_tell": "1", "alerts": "1"}),
    ("admin", "?municipality=sued", ["gs-sued/k1"],
     {"online": "1/1", "charged": "1", "cannot_tell": "2", "alerts": "0"}),
    ("admin", "?school=gs-park", ["gs-park/k1"], {"charging": "1", "missing": "1", "alerts": "1"}),
    ("tech", "", ["gs-linde/k1", "gs-park/k1"], {"online": "2/2"}),
    ("tech", "?municipality=sued", ["gs-linde/k1", "gs-park/k1"], {"online": "2/2"}),
    ("tech", "?school=gs-sued", ["gs-linde/k1", "gs-park/k1"], {"cannot_tell": "1"}),
    ("tech", "?school=gs-linde", ["gs-linde/k1"], {"faulty": "1", "cannot_tell": "0"}),
])
def test_the_overview_page_filters_and_counts_per_state(
        dash: Dashboard, user: str, query: str, rows: list[str], counts: dict[str, str]) -> None:
    get = _getter(dash, user)
    for partial in ("", "&partial=1" if query else "?partial=1"):  # the live refresh keeps it
        html = get("/" + query + partial).text  # type: ignore[operator]
        assert _rows(html) == rows
        for name, value in counts.items():
            assert _count(html, name) == value, (name, query, partial)
    if user == "tech":  # not even as a choice
        assert "Grundschule Süd" not in html and "Südstadt" not in html


def test_the_overview_has_the_cannot_tell_column_in_both_languages(dash: Dashboard) -> None:
    get = _getter(dash, "admin")
    de = get("/?school=gs-sued").text  # type: ignore[operator]
    en = get("/?school=gs-sued&lang=en").text  # type: ignore[operator]
    assert "<th title=" in de and ">nicht beurteilbar</th>" in de and ">cannot tell</th>" in en
    row = re.search(r'data-cabinet="gs-sued/k1">.*?</tr>', de, re.S)
    assert row is not None
    assert re.search(r'<td class="num cannot-tell uncertain" data-label="nicht beurteilbar">2</td>',
                     row.group(0))
    assert 'option value="gs-sued" selected' in de and ">Auswahl</th>" in de
    assert ">Selection</th>" in en


def test_the_pager_keeps_the_filter(dash: Dashboard) -> None:
    chosen = overview_filter(dash.index, None, "nord")
    view = dash.counts.build(dash.sources.fleet, {}, chosen.sites, 1, per_page=1)
    assert (view.pages, view.total_cabinets) == (2, 2)
    assert chosen.query == "municipality=nord"  # what the pager's links append


# -- silences in words -----------------------------------------------------------------------------

@pytest.mark.parametrize(("lang", "matchers", "expected"), [
    ("de", {"alertname": "door_open", "site": "gs-park", "cabinet": "k1"},
     ("Grundschule am Park", "Raum 12", "Tür zu lange offen", ())),
    ("en", {"alertname": "door_open", "site": "gs-park", "cabinet": "k1"},
     ("Grundschule am Park", "Raum 12", "Door open too long", ())),
    ("de", {"site": "gs-linde", "cabinet": "k1"},
     ("Grundschule Lindenplatz", "Raum 3", "alle Alarme", ())),
    ("de", {"alertname": "ipad_not_charging", "site": "gs-sued", "cabinet": "k1", "slot": "2",
            "asset_tag": "GS-SUED-0002"},
     ("Grundschule Süd", "Bibliothek", "iPad lädt nicht", ("Fach 2", "iPad GS-SUED-0002"))),
    ("en", {"alertname": "device_fault", "site": "gs-x", "cabinet": "k9", "device": "meter"},
     ("gs-x", "k9", "Device not answering", ("Device meter",))),  # not in the config: its ids
    ("en", {"alertname": "door_open"}, ("all schools", "all cabinets", "Door open too long", ())),
    ("de", {"alertname": "new_rule", "site": "gs-park"},
     ("Grundschule am Park", "alle Schränke", "new rule", ())),
])
def test_a_silence_in_words(lang: str, matchers: dict[str, str],
                            expected: tuple[str, str, str, tuple[str, ...]]) -> None:
    got = describe_silence(matchers, INDEX, translator(lang))  # type: ignore[arg-type]
    assert (got.school, got.cabinet, got.rule, got.details) == expected


def test_every_rule_has_a_name_in_both_languages() -> None:
    names = set(re.findall(r'^    name = "([a-z_]+)"', "".join(
        p.read_text(encoding="utf-8") for p in Path(rules.__file__).parent.glob("*.py")), re.M))
    assert len(names) >= 15
    for lang in ("de", "en"):
        t = translator(lang)  # type: ignore[arg-type]
        assert all(t(f"rule.{name}") != f"rule.{name}" for name in names), lang


@pytest.mark.parametrize(("user", "lang", "sentences"), [
    ("admin", "de", ["Grundschule am Park · Schrank Raum 12 · Tür zu lange offen",
                     "Grundschule Lindenplatz · Schrank Raum 3 · alle Alarme",
                     "Grundschule Süd · Schrank Bibliothek · iPad lädt nicht · Fach 2 · "
                     "iPad GS-SUED-0002"]),
    ("tech", "en", ["Grundschule am Park · Cabinet Raum 12 · Door open too long",
                    "Grundschule Lindenplatz · Cabinet Raum 3 · all alerts"]),
])
def test_the_alerts_page_shows_silences_in_words(dash: Dashboard, user: str, lang: str,
                                                  sentences: list[str]) -> None:
    html = _getter(dash, user)(f"/alerts?lang={lang}").text  # type: ignore[operator]
    items = re.findall(r'<li class="silence[^"]*"[^>]*>(.*?)</li>', html, re.S)
    texts = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item)).strip() for item in items]
    assert len(texts) == len(sentences)
    kinds = ("Stummschalten ", "Techniker vor Ort ") if lang == "de" else \
        ("Silence ", "Technician on site ")
    for text, sentence in zip(texts, sentences, strict=True):
        assert text.startswith(tuple(kind + sentence for kind in kinds)), text
        assert " ".join(text.split()).count(f" {'von' if lang == 'de' else 'by'} ") == 1
    joined = " ".join(texts)
    assert "=" not in joined and "gs-" not in joined  # no raw matchers, no site ids
    until = "bis Mittwoch, 2. Dezember 2026, 13:00 Uhr" if lang == "de" \
        else "until Wednesday, 2 December 2026, 11:00"
    assert any(until in text for text in texts), texts
