"""The inventory in the dashboard and the API: who may see and change which iPad, the MDM import
as a file upload and over the API, and a technician moving an iPad to another slot, after which
the collector files that slot's time series and sessions under the same iPad (issue 16, item 5)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Channel,
    DoorState,
    MainsState,
    SlotInfo,
    SlotState,
    StatusMessage,
    TelemetryMessage,
    encode,
    topic_for,
)
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.assets import AssetRegister, org_slots
from server.auth import Auth, Role, User, UserStore
from server.ingest import MqttStats
from server.inventory import Inventory, Place
from server.org import Organisation
from server.pipeline import IngestStats, Pipeline
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from tests.support.sinks import ListSink

pytestmark = pytest.mark.store

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
PASSWORD = "a-long-password"
ORG = Organisation.model_validate({
    "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nordheim"}, {"id": "sued", "name": "Südstadt"}],
    "schools": [{"site": "gs-park", "name": "Grundschule am Park", "municipality": "nord"},
                {"site": "gs-sued", "name": "Grundschule Süd", "municipality": "sued"}],
    "cabinets": [{"school": "gs-park", "id": "k1", "name": "Raum 12",
                  "slots": {1: "PARK-1", 2: "PARK-2"}},
                 {"school": "gs-sued", "id": "k1", "name": "Bibliothek", "slots": {1: "SUED-1"}}],
})


class World:
    def __init__(self) -> None:
        inventory = Inventory.in_memory(lambda: NOW)
        inventory.seed(org_slots(ORG), "server.toml")
        self.register = AssetRegister(inventory)
        self.fleet = self.register.fleet()
        self.sink = ListSink()
        self.pipeline = Pipeline(self.fleet, self.sink, lambda: NOW)
        store = UserStore(open_store(None))
        store.add_user(User("admin", Role.ADMIN), PASSWORD, NOW)
        store.add_user(User("tech-nord", Role.TECHNICIAN, municipality="nord"), PASSWORD, NOW)
        store.add_user(User("lehrerin", Role.VIEWER, school="gs-park"), PASSWORD, NOW)
        state = StoredState.in_memory()
        self.sources = ApiSources(
            fleet=self.fleet, alerts=state, state=state, clock=lambda: NOW, org=ORG,
            ingest_stats=lambda **_: IngestStats(0, 0, {}),
            mqtt_stats=lambda: MqttStats(True, 1, 0, None),
            tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(store, lambda: NOW),
            assets=self.register)
        self.app = create_app(self.sources)
        install_dashboard(self.app, Dashboard(self.sources))
        self.seq = 0

    @property
    def inventory(self) -> Inventory:
        return self.register.inventory

    def send(self, site: str, message_type: type, **fields: Any) -> None:
        self.seq += 1
        message = message_type(v=1, site=site, cabinet="k1", boot_id="b" * 32, seq=self.seq,
                               ts=NOW, clock_synced=True, **fields)
        channels: dict[type, Channel] = {StatusMessage: Channel.STATUS,
                                         BirthMessage: Channel.BIRTH,
                                         TelemetryMessage: Channel.TELEMETRY}
        channel = channels[message_type]
        assert self.pipeline.handle(topic_for(site, "k1", channel), encode(message))

    def cabinet_online(self, site: str, slots: int = 3) -> None:
        self.send(site, StatusMessage, status=AgentStatus.ONLINE)
        self.send(site, BirthMessage, agent_version="0.2", config_hash="00000000",
                  cabinet_model="m", slot_count=slots, poll_interval_s=1.0,
                  telemetry_interval_s=10.0, slots=[SlotInfo(slot=n) for n in range(1, slots + 1)])

    def telemetry(self, site: str, powers: list[float]) -> None:
        self.send(site, TelemetryMessage, power_w=powers,
                  states=[SlotState.CHARGING if p > 1 else SlotState.EMPTY for p in powers],
                  temperature_c=20.0, door=DoorState.CLOSED, mains=MainsState.ON, devices=[])


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html[:300]
    return found.group(1)


def session(world: World, user: str, *steps: Callable[[httpx.AsyncClient], Any]) -> list[Any]:
    """Log ``user`` in and run ``steps`` (coroutines taking the client), returning their results."""
    async def run() -> list[Any]:
        transport = httpx.ASGITransport(app=world.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            login = await client.post("/login", data={
                "name": user, "password": PASSWORD, "csrf": _csrf((await client.get("/login")).text)})
            assert login.status_code == 303, login.text[:300]
            return [await step(client) for step in steps]
    return asyncio.run(run())


def post_form(path: str, fields: dict[str, str], csrf_from: str = "/inventory"):  # type: ignore[no-untyped-def]
    async def step(client: httpx.AsyncClient) -> httpx.Response:
        csrf = _csrf((await client.get(csrf_from)).text)
        return await client.post(path, data={"csrf": csrf, **fields})
    return step


def get(path: str):  # type: ignore[no-untyped-def]
    async def step(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(path)
    return step


@pytest.fixture
def world() -> World:
    return World()


def _listed(html: str) -> list[str]:
    return re.findall(r'<tr data-tag="([^"]+)"', html)


def test_each_role_lists_what_it_may_see(world: World) -> None:
    world.inventory.save("SPARE-1", None, "Ersatz", "admin")  # in no slot
    pages = {user: session(world, user, get("/inventory"))[0]
             for user in ("admin", "tech-nord", "lehrerin")}
    assert _listed(pages["admin"].text) == ["PARK-1", "PARK-2", "SUED-1", "SPARE-1"]
    assert _listed(pages["tech-nord"].text) == ["PARK-1", "PARK-2", "SPARE-1"]  # to place it
    assert _listed(pages["lehrerin"].text) == ["PARK-1", "PARK-2"]
    assert "Grundschule am Park · Raum 12" in pages["lehrerin"].text  # names, not ids
    assert 'action="/inventory/import"' in pages["admin"].text
    assert 'action="/inventory/import"' not in pages["tech-nord"].text
    assert 'action="/inventory/new"' not in pages["lehrerin"].text


def test_a_technician_moves_an_ipad_and_its_data_follow_it(world: World) -> None:
    world.cabinet_online("gs-park")
    world.telemetry("gs-park", [12.0, 0.0, 0.0])
    slot_page, moved, after = session(
        world, "tech-nord",
        get("/inventory/slot?site=gs-park&cabinet=k1&slot=3"),
        post_form("/inventory/slot", {"site": "gs-park", "cabinet": "k1", "slot": "3",
                                      "tag": "PARK-1", "action": "place"}),
        get("/cabinets/gs-park/k1/slots/3"))
    assert slot_page.status_code == 200 and "iPad in diesem Fach" in slot_page.text
    assert moved.status_code == 303 and moved.headers["location"] == "/cabinets/gs-park/k1/slots/3"
    assert "PARK-1" in after.text
    view = world.fleet.get("gs-park", "k1")
    assert view is not None and [s.asset_tag for s in view.slots] == [None, "PARK-2", "PARK-1"]
    world.sink.lines.clear()
    world.telemetry("gs-park", [0.0, 0.0, 12.0])  # the iPad charges in its new slot
    lines = {line.split(" ")[0] for line in world.sink.lines if line.startswith("slot,")}
    assert "slot,site=gs-park,cabinet=k1,slot=3,asset_tag=PARK-1" in lines
    assert "slot,site=gs-park,cabinet=k1,slot=1" in lines  # slot 1 holds no known iPad now
    move = world.inventory.moves("PARK-1")[0]
    assert (move.before, move.after, move.by) == (Place("gs-park", "k1", 1),
                                                  Place("gs-park", "k1", 3), "tech-nord")


def test_no_one_pulls_an_ipad_out_of_another_municipality(world: World) -> None:
    world.cabinet_online("gs-park")
    refused, = session(world, "tech-nord", post_form(
        "/inventory/slot", {"site": "gs-park", "cabinet": "k1", "slot": "3", "tag": "SUED-1",
                            "action": "place"}))
    assert refused.status_code == 422
    assert "an einer Schule, die Sie nicht betreuen" in refused.text
    assert world.inventory.snapshot().tag_at(Place("gs-sued", "k1", 1)) == "SUED-1"
    viewer, = session(world, "lehrerin", post_form(
        "/inventory/slot", {"site": "gs-park", "cabinet": "k1", "slot": "3", "tag": "NEW-1",
                            "action": "place"}))
    assert viewer.status_code == 403 and world.inventory.get("NEW-1") is None
    other, = session(world, "tech-nord", get("/inventory/slot?site=gs-sued&cabinet=k1&slot=1"))
    assert other.status_code == 403


def test_an_mdm_file_uploaded_by_the_admin_and_refused_from_a_technician(world: World) -> None:
    data = "Seriennummer;Inventarnummer;Gerätename\nDMPX11111111;PARK-1;Klasse 3a – 01\n" \
           "DMPX22222222;NEU-9;Ersatz\n".encode("cp1252")

    def upload(dry_run: bool = False):  # type: ignore[no-untyped-def]
        async def step(client: httpx.AsyncClient) -> httpx.Response:
            csrf = _csrf((await client.get("/inventory")).text)
            fields = {"csrf": csrf, **({"dry_run": "1"} if dry_run else {})}
            return await client.post("/inventory/import", data=fields,
                                     files={"file": ("relution.csv", data, "text/csv")})
        return step

    tech, = session(world, "tech-nord", upload())
    assert tech.status_code == 403 and world.inventory.get("NEU-9") is None
    dry, done = session(world, "admin", upload(dry_run=True), upload())
    assert "Probelauf: nichts gespeichert." in dry.text
    assert "1 neu, 1 geändert, 0 unverändert" in done.text
    park = world.inventory.get("PARK-1")
    assert park is not None and (park.serial, park.name, park.place) == (
        "DMPX11111111", "Klasse 3a – 01", Place("gs-park", "k1", 1))  # its place stays


def test_the_api_lists_and_imports_all_or_nothing(world: World) -> None:
    token = world.sources.auth.store.create_token("admin", "script", NOW)
    tech = world.sources.auth.store.create_token("tech-nord", "script", NOW)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=world.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            def auth(t: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {t}", "Content-Type": "text/csv"}
            return [
                await client.get("/api/inventory?school=gs-park", headers=auth(token)),
                await client.post("/api/inventory/import", headers=auth(tech),
                                  content=b"Asset Tag\nX-1\n"),
                await client.post("/api/inventory/import?lang=en", headers=auth(token),
                                  content=b"Asset Tag,Serial Number\nX-1,SN1\nX-2,SN1\n"),
                await client.post("/api/inventory/import", headers=auth(token),
                                  content=b"Name,Serial\nx,SN1\n"),
                await client.post("/api/inventory/import", headers=auth(token),
                                  content=b"Asset Tag,Serial Number\nX-1,SN1\nX-2,SN2\n"),
            ]

    listing, forbidden, conflict, unreadable, done = asyncio.run(run())
    assert [(i["asset_tag"], i["slot"]) for i in listing.json()["ipads"]] == [("PARK-1", 1),
                                                                              ("PARK-2", 2)]
    assert forbidden.status_code == 403
    assert conflict.status_code == 409 and conflict.json()["saved"] is False
    assert conflict.json()["errors"] == [{"line": 3, "code": "serial_twice", "message":
                                          "Serial number “SN1” is in the file more than once."}]
    assert unreadable.status_code == 409 and unreadable.json()["errors"][0]["code"] == "no_tag_column"
    assert done.status_code == 200 and (done.json()["saved"], done.json()["added"]) == (True, 2)


def test_the_ipad_page_edits_and_takes_it_out(world: World) -> None:
    page, saved, out = session(
        world, "tech-nord", get("/inventory/ipad?tag=PARK-2"),
        post_form("/inventory/ipad", {"tag": "PARK-2", "new_tag": "PARK-0002",
                                      "serial": "dmpx 3333 3333", "name": "Klasse 4b",
                                      "action": "save"}),
        post_form("/inventory/ipad", {"tag": "PARK-0002", "action": "unplace"}))
    assert page.status_code == 200 and "Grundschule am Park · Raum 12 · Fach 2" in page.text
    assert saved.status_code == 303 and out.status_code == 303
    ipad = world.inventory.get("PARK-0002")
    assert ipad is not None and (ipad.serial, ipad.name, ipad.place) == ("DMPX33333333", "Klasse 4b",
                                                                         None)
    assert world.inventory.get("PARK-2") is None  # retagged, not copied
    hidden, = session(world, "tech-nord", get("/inventory/ipad?tag=SUED-1"))
    assert hidden.status_code == 404  # another municipality's iPad does not exist for them
    deleted, = session(world, "tech-nord", post_form("/inventory/ipad", {"tag": "PARK-0002",
                                                                           "action": "delete"}))
    assert deleted.status_code == 403 and world.inventory.get("PARK-0002") is not None


def test_a_hostile_tag_is_text_everywhere(world: World) -> None:
    hostile = '<script>alert(1)</script>"'
    world.inventory.place(hostile, Place("gs-park", "k1", 3), "admin", create=True)
    world.cabinet_online("gs-park")
    pages = session(world, "admin", get("/inventory"), get("/cabinets/gs-park/k1/slots/3"),
                    get("/inventory/slot?site=gs-park&cabinet=k1&slot=3"))
    for response in pages:
        assert response.status_code == 200
        assert "<script>alert(1)" not in response.text and "&lt;script&gt;" in response.text


def test_an_unknown_cabinet_or_a_slot_beyond_the_range_is_not_found(world: World) -> None:
    missing, beyond = session(world, "admin", get("/inventory/slot?site=gs-x&cabinet=k9&slot=1"),
                              get("/inventory/slot?site=gs-park&cabinet=k1&slot=999"))
    assert (missing.status_code, beyond.status_code) == (404, 404)


def test_placed_since_is_local_time(world: World) -> None:
    world.inventory.place("PARK-1", Place("gs-park", "k1", 2), "admin")
    page, = session(world, "admin", get("/inventory"))
    assert NOW.isoformat()[:10] not in page.text  # no ISO date; German format instead
    assert re.search(r"09:00", page.text), page.text[-2000:]  # 08:00 UTC, in Berlin


def test_a_tag_typed_with_other_spacing_is_the_same_ipad_and_stays_theirs(world: World) -> None:
    """"GS  SUED 7" is "GS SUED 7": typed with a double space it must not slip past the check
    that keeps a technician out of another municipality's cabinets, nor overwrite it as new."""
    world.inventory.place("GS SUED 7", Place("gs-sued", "k1", 2), "admin", create=True)
    world.cabinet_online("gs-park")
    moved, added = session(
        world, "tech-nord",
        post_form("/inventory/slot", {"site": "gs-park", "cabinet": "k1", "slot": "3",
                                      "tag": "GS  SUED   7", "action": "place"}),
        post_form("/inventory/new", {"tag": " GS SUED  7 ", "serial": "DMPX99999999",
                                     "name": "überschrieben"}))
    assert moved.status_code == 422 and "nicht betreuen" in moved.text
    assert added.status_code == 422 and "gehört schon einem anderen iPad" in added.text
    ipad = world.inventory.get("GS SUED 7")
    assert ipad is not None and ipad.place == Place("gs-sued", "k1", 2) and ipad.serial is None
