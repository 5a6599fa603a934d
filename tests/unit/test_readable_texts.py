"""What people read names schools, rooms and asset tags and shows local times (issue 16): every
rule's sentence in every notification (group update, reminder, digest; the e-mail and chat text
and the webhook's human fields) and the CSV exports, for an organisation that names everything.
A raw id where a name exists, or an ISO/UTC time, fails."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import httpx
import pytest

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    ChargeSession,
    EventKind,
    EventMessage,
    SessionEnd,
    SlotInfo,
    StatusMessage,
)
from server.alerts import Alert
from server.alerts.state import StoredState
from server.alerts.status import AlertStatus
from server.alerts.store import Ack
from server.api import ApiSources, create_app
from server.auth import Auth, Role, User, UserStore
from server.battery import BatteryAgeing
from server.i18n import _CATALOGUE
from server.ingest import MqttStats
from server.notify.base import Notification
from server.notify.render import render_digest, render_group, render_reminder
from server.org import Organisation
from server.pipeline import IngestStats
from server.presence import UnconfirmedSlot
from server.sessions import SessionRecorder
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from tests.support.inventory import tagged_fleet

NOW: Final = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
SITE, CAB, SLOT, TAG = "gs-nord", "c1", 7, "GSN-0007"
ORG: Final = Organisation.model_validate({
    "district": "Landkreis Beispiel", "district_team": "it",
    "teams": [{"id": "it", "name": "Schul-IT"}],
    "municipalities": [{"id": "nord", "name": "Gemeinde Nord"}],
    "schools": [{"site": SITE, "name": "Grundschule Am Nordhang", "municipality": "nord"}],
    "cabinets": [{"school": SITE, "id": CAB, "name": "Raum 12", "slots": {SLOT: TAG}}],
})
# Realistic annotations of each rule (times as the rules write them: ISO with an offset).
ISO_AGO = (NOW - timedelta(hours=3)).isoformat()
ANNOTATIONS: Final[dict[str, dict[str, str]]] = {
    "cabinet_offline.silence": {"reason": "silence", "last_seen_at": ISO_AGO},
    "cabinet_offline.lwt": {"reason": "lwt", "return_cause": "power_loss"},
    "device_fault": {"device": "meter", "error": "timeout"},
    "ipad_not_returned": {"check": "16:30", "reason": "empty"},
    "ipad_not_returned.no_sign": {"check": "16:30", "reason": "no_sign", "unseen_since": ISO_AGO},
    "slot_unjudgeable": {"since": ISO_AGO},
    "charging_too_long": {"since": ISO_AGO},
    "slot_overpower": {"power_w": "31.25", "rating_w": "20.0"},
    "over_temperature": {"temperature_c": "45.5", "threshold_c": "40.0"},
    "temperature_rise": {"from_c": "21.5", "to_c": "33.0", "window_min": "10"},
    "battery_worn": {"ratio_pct": "71.5", "full_charges": "1234"},
    "data_lost": {"lost": "3"},
}
SLOT_RULES: Final = {"ipad_not_returned", "slot_unjudgeable", "ipad_not_charging",
                     "ipad_not_charged", "charging_too_long", "slot_overpower", "battery_worn"}
ISO: Final = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\bUTC\b|\+00:00")
RAW_IDS: Final = re.compile(rf"\b{SITE}\b|\b{CAB}\b|/{CAB}\b")
SLOT_NUMBER: Final = re.compile(rf"\b(Fach|slot) {SLOT}\b")  # shown, with its asset tag beside
DECIMAL_POINT: Final = re.compile(r"\d\.\d+ ?(W|°C|%)")  # a measurement, not a date


def _rule_names() -> list[str]:
    skip = ("state.", "severity.", "flag.", "subject.", "body.", "digest.", "cli.", "return_cause.",
            "unknown_alert")
    return sorted({k for k in _CATALOGUE["de"] if not k.startswith(skip)})


def _alerts() -> list[AlertStatus]:
    statuses = []
    for key in _rule_names():
        name = key.split(".")[0]
        labels = {"alertname": name, "site": SITE, "cabinet": CAB}
        if name in SLOT_RULES:
            labels["slot"], labels["asset_tag"] = str(SLOT), TAG  # as the rules label it
        annotations = ANNOTATIONS.get(key, {})
        if "." in key and "reason" not in annotations:
            annotations = {"reason": key.split(".")[1]}
        alert = Alert(labels, annotations, NOW - timedelta(hours=2), NOW + timedelta(minutes=5))
        ack = Ack(alert.fingerprint, alert.active_at, "Frau Beispiel", "bin dran",
                  NOW - timedelta(minutes=30))
        statuses.append(AlertStatus(alert, alert.state(NOW), ack=ack))
    return statuses


def _notifications(lang: str) -> Iterator[Notification]:
    statuses = _alerts()
    common: dict[str, Any] = {"org": ORG, "lang": lang, "key": "k", "receiver": "Schul-IT",
                              "site": SITE, "cabinet": CAB, "now": NOW}
    yield render_group(**common, firing=statuses, resolved=[statuses[0].alert],
                       still_open=statuses[1:3])
    yield render_reminder(**common, still_open=statuses)
    unconfirmed = [UnconfirmedSlot(SITE, CAB, SLOT, TAG, NOW - timedelta(hours=15), None)]
    yield render_digest(org=ORG, lang=lang, key="d", site=SITE, day=date(2026, 11, 17),  # type: ignore[arg-type]
                        statuses=statuses, now=NOW, unconfirmed=unconfirmed)


def _human_texts(note: Notification) -> list[str]:
    """What people read: subject and body (mail and chat), the webhook's title and summaries."""
    payload = note.payload
    found = [note.subject, note.body, str(payload.get("title") or ""), str(payload["school"])]
    found += [a["summary"] for a in payload["alerts"]]
    found += [u["title"] for u in payload.get("unconfirmed", [])]
    return found


@pytest.mark.parametrize("lang", ["de", "en"])
def test_notification_texts_name_things_and_show_local_times(lang: str) -> None:
    for note in _notifications(lang):
        for text in _human_texts(note):
            assert not ISO.search(text), (note.kind, text)
            assert not RAW_IDS.search(text), (note.kind, text)
            for line in text.splitlines():
                assert not SLOT_NUMBER.search(line) or TAG in line, line
        assert "Grundschule Am Nordhang" in note.body and "Raum 12" in note.body
        if note.kind == "alerts":
            assert TAG in note.body  # the asset tag from the organisation, not in any label
        if lang == "de":
            assert not DECIMAL_POINT.search(note.body), note.body
            assert "Fach 7" in note.body and "31,2 W" in note.body and "45,5 °C" in note.body


def test_webhook_machine_fields_stay_as_they_were() -> None:
    group = next(_notifications("de"))
    first = group.payload["alerts"][0]
    assert first["labels"]["site"] == SITE and first["labels"]["cabinet"] == CAB
    assert first["starts_at"] == (NOW + timedelta(minutes=5)).isoformat()  # ISO, UTC, as before
    assert group.payload["sent_at"] == NOW.isoformat()
    assert (group.payload["site"], group.payload["cabinet"]) == (SITE, CAB)


def test_a_pending_alert_never_says_seit_in_the_future() -> None:
    later = Alert({"alertname": "door_open", "site": SITE, "cabinet": CAB}, {}, NOW,
                  NOW + timedelta(hours=1))  # pending: firing begins in an hour
    note = render_reminder(org=ORG, lang="de", key="k", receiver="IT", site=SITE, cabinet=CAB,
                           still_open=[AlertStatus(later, later.state(NOW))], now=NOW)
    assert "(seit Di 17.11.2026, 10:00 – gerade eben)" in note.body  # 09:00 UTC is 10:00 local
    assert "11:00" not in note.body


# -- the CSV exports ------------------------------------------------------------------------------

def _env(seq: int) -> dict[str, Any]:
    return {"v": 1, "site": SITE, "cabinet": CAB, "boot_id": "b" * 32, "seq": seq, "ts": NOW,
            "clock_synced": True}


def _app() -> tuple[Any, str]:
    fleet = tagged_fleet({(SITE, CAB): {SLOT: TAG}})
    fleet.apply(StatusMessage(**_env(0), status=AgentStatus.ONLINE), NOW)
    fleet.apply(BirthMessage(**_env(1), agent_version="0.1", config_hash="00000000",
                             cabinet_model="m", slot_count=SLOT, poll_interval_s=1.0,
                             telemetry_interval_s=10.0,
                             slots=[SlotInfo(slot=SLOT)]), NOW)
    sessions = SessionRecorder(None, BatteryAgeing())
    sessions.record(EventMessage(**_env(2), event=EventKind.SESSION_ENDED, slot=SLOT,
                                 session=ChargeSession(
                                     slot=SLOT, asset_tag=TAG, started_at=NOW - timedelta(hours=2),
                                     ended_at=NOW - timedelta(hours=1), duration_s=3600.5,
                                     energy_wh=21.5, peak_w=18.25, end=SessionEnd.FULL)))
    state = StoredState.in_memory()
    for status in _alerts():
        state.put_active(status.alert)
    store = UserStore(open_store(None))
    store.add_user(User("admin", Role.ADMIN), "correct horse battery", NOW)
    token = store.create_token("admin", "t", NOW)
    sources = ApiSources(fleet=fleet, alerts=state, clock=lambda: NOW, state=state, org=ORG,
                         ingest_stats=lambda **_: IngestStats(1, 1, {}),
                         mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(store, lambda: NOW))
    app = create_app(sources)
    install_dashboard(app, Dashboard(sources, sessions))
    return app, token


def _get(path: str) -> str:
    app, token = _app()

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            return await client.get(path)
    response = asyncio.run(call())
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize("export", ["inventory.csv", "sessions.csv", "alerts.csv"])
def test_csv_exports_are_local_and_named(export: str) -> None:
    german = _get(f"/api/export/{export}")
    english = _get(f"/api/export/{export}?lang=en")
    assert german.startswith('\ufeff"') and english.startswith('"')
    for text in (german, english):
        assert not ISO.search(text), text[:800]
        assert "Grundschule Am Nordhang" in text and "Raum 12" in text
    assert '";"' in german and '","' in english
    if export == "sessions.csv":
        assert '"Di 17.11.2026' not in german  # a spreadsheet's time, not a sentence's
        assert '"17.11.2026 08:00";"17.11.2026 09:00";"3600,5";"21,5";"18,25"' in german
        assert '"17 Nov 2026 08:00","17 Nov 2026 09:00","3600.5","21.5","18.25"' in english
    if export == "alerts.csv":
        assert "Schrank Raum 12 (Grundschule Am Nordhang), Fach 7: iPad GSN-0007" in german
        assert "Cabinet Raum 12 (Grundschule Am Nordhang), slot 7: iPad GSN-0007" in english
        # rule, state, severity and "silenced" in words, not the program's
        assert '"Tür zu lange offen";"wartet";"Warnung"' in german and '"nein"\r\n' in german
        assert '"Door open too long","pending","warning"' in english and '"no"\r\n' in english
        assert '"door_open"' not in german + english and '"False"' not in german + english
    if export == "sessions.csv":
        assert '"voll geladen"' in german and '"fully charged"' in english
    if export == "inventory.csv":
        assert '"unbekannt"' in german and '"unknown"' in english  # the slot's state
