"""Every page a person reads shows names, local time and the language's number format: no school
or cabinet id where the organisation names it, no ISO or UTC timestamp, no decimal point in German.
Walks the pages of a realistic school (named cabinets, asset tags, a firing alert with an
acknowledgement, a silence, a charge session) in German and English."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import timedelta

import httpx
import pytest

from cabinet_agent.common.protocol import ChargeSession, EventKind, EventMessage, SessionEnd
from server.alerts import Alert
from server.alerts.silence import Silence, SilenceKind
from server.alerts.store import Ack
from server.api import create_app
from server.assets import AssetRegister
from server.battery import BatteryAgeing
from server.sessions import SessionRecorder
from server.web import Dashboard, install_dashboard
from tests.unit.test_web_certainty import NOW, ORG, _fleet, _sources

PAGES = ["/", "/schools/gs-park", "/cabinets/gs-park/k1", "/cabinets/gs-park/k1/slots/1",
         "/cabinets/gs-park/k2", "/alerts", "/alerts?all=true", "/missing", "/search?q=Park",
         "/inventory", "/inventory/ipad?tag=GS-PARK-0001", "/reports"]
ISO = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\bUTC\b")
DECIMAL_POINT = re.compile(r"\d\.\d+ ?(W|Wh|°C|%|min)\b")
IDS = ("gs-park", "nord")  # the school's site id and its municipality's id: both have names


def _visible(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def pages() -> dict[tuple[str, str], str]:
    # the inventory the fleet's tags come from, for the inventory's pages
    sources = dataclasses.replace(_sources(_fleet()), assets=AssetRegister.from_org(ORG))
    state = sources.state
    labels = {"alertname": "ipad_not_charging", "severity": "warning", "site": "gs-park",
              "cabinet": "k1", "slot": "3", "asset_tag": "GS-PARK-0003"}
    alert = Alert(labels, {"since": (NOW - timedelta(hours=3)).isoformat()},
                  NOW - timedelta(hours=2), NOW - timedelta(hours=2))
    sources.alerts.put_active(alert)  # type: ignore[attr-defined]
    state.acknowledge(Ack(alert.fingerprint, alert.active_at, "technik-nord", "Netzteil bestellt",
                          NOW - timedelta(hours=1)))
    state.add_silence(Silence({"site": "gs-park", "cabinet": "k2"}, NOW, NOW + timedelta(hours=2),
                              "technik-nord", "vor Ort", SilenceKind.TECHNICIAN, None, NOW))
    sessions = SessionRecorder(None, BatteryAgeing())
    sessions.record(EventMessage(
        v=1, site="gs-park", cabinet="k1", boot_id="c" * 32, seq=99, ts=NOW, clock_synced=True,
        event=EventKind.SESSION_ENDED, slot=1,
        session=ChargeSession(slot=1, asset_tag="GS-PARK-0001", started_at=NOW - timedelta(hours=3),
                              ended_at=NOW - timedelta(hours=1), duration_s=7200.0,
                              energy_wh=31.5, peak_w=18.25, end=SessionEnd.FULL)))
    dash = Dashboard(sources, sessions)
    app = create_app(sources)
    install_dashboard(app, dash)
    token = sources.auth.store.create_token("admin", "t", NOW)

    async def fetch() -> dict[tuple[str, str], str]:
        out = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            for lang in ("de", "en"):
                for path in PAGES:
                    joiner = "&" if "?" in path else "?"
                    response = await client.get(f"{path}{joiner}lang={lang}")
                    assert response.status_code == 200, (path, lang, response.status_code)
                    out[(path, lang)] = _visible(response.text)
        return out
    return asyncio.run(fetch())


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("path", PAGES)
def test_a_page_shows_names_and_local_time(pages: dict[tuple[str, str], str], path: str,
                                           lang: str) -> None:
    text = pages[(path, lang)]
    assert not ISO.search(text), ISO.search(text)
    shown_ids = [i for i in IDS if re.search(rf"(?<![\w/-]){re.escape(i)}(?![\w/-])", text)]
    assert not shown_ids, f"{path} shows ids {shown_ids}"
    if lang == "de":
        assert not DECIMAL_POINT.search(text), DECIMAL_POINT.search(text)


def test_the_walk_saw_what_it_checks(pages: dict[tuple[str, str], str]) -> None:
    """The checks above are worth something only if the pages hold times, numbers and names."""
    cabinet = pages[("/cabinets/gs-park/k1", "de")]
    assert "Grundschule am Park" in cabinet and "Raum 12" in cabinet
    assert "20 °C" in cabinet  # the temperature, German
    slot = pages[("/cabinets/gs-park/k1/slots/1", "de")]
    assert "31,5 Wh" in slot and "voll geladen" in slot
    alerts = pages[("/alerts", "de")]
    assert "technik-nord" in alerts and "GS-PARK-0003" in alerts

