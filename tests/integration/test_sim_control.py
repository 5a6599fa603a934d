"""The simulator's JSON control API over real HTTP (stdlib client, in-process server)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from cabinet_agent.cabinet_model import load_cabinet_model
from simulators.cabinet import CabinetSim
from simulators.control import ControlServer

pytestmark = pytest.mark.integration

Call = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def sim() -> CabinetSim:
    return CabinetSim(load_cabinet_model("ladewache-8"), start=datetime(2026, 11, 30, 7, 0),
                      seed=1, fill=0.5)


@pytest.fixture
def call(sim: CabinetSim) -> Iterator[Call]:
    server = ControlServer(sim, port=0)
    server.start()

    def request(method: str, path: str, body: object = None, raw: bytes | None = None
                ) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(server.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read())

    try:
        yield request
    finally:
        server.stop()


def test_state_is_the_ground_truth(call: Call, sim: CabinetSim) -> None:
    status, state = call("GET", "/state")
    assert status == 200
    assert state == json.loads(json.dumps(sim.truth().to_json()))
    assert state["sim_time"] == "2026-11-30T07:00:00"
    assert [s["slot"] for s in state["slots"]] == list(range(1, 9))


def test_operations_change_the_cabinet(call: Call, sim: CabinetSim) -> None:
    empty = next(s.slot for s in sim.truth().slots if not s.present)
    status, state = call("POST", f"/slots/{empty}/insert", {"soc": 0.25, "asset_tag": "X-1"})
    assert status == 200
    slot = state["slots"][empty - 1]
    assert (slot["present"], slot["soc"], slot["asset_tag"], slot["charging"]) == \
        (True, 0.25, "X-1", True)

    status, state = call("POST", f"/slots/{empty}/remove")
    assert status == 200 and not state["slots"][empty - 1]["present"]

    assert call("POST", "/door", {"open": True})[1]["door_open"] is True
    assert call("POST", "/mains", {"on": False})[1]["total_power_w"] == 0.0
    assert call("POST", "/devices/climate/fault", {"mode": "dead"})[1]["device_faults"] == \
        {"meter": "none", "io": "none", "climate": "dead"}
    status, state = call("POST", "/advance", {"seconds": 3600})
    assert status == 200 and state["sim_time"] == "2026-11-30T08:00:00"
    assert sim.truth().door_open and not sim.truth().mains_on


def test_a_meter_is_replaced_and_an_ipad_of_another_size_inserted(call: Call, sim: CabinetSim) -> None:
    empty = next(s.slot for s in sim.truth().slots if not s.present)
    status, state = call("POST", f"/slots/{empty}/insert", {"soc": 0.0, "capacity_wh": 40.88})
    assert status == 200 and state["slots"][empty - 1]["charging"]
    call("POST", "/advance", {"seconds": 3600})
    status, state = call("POST", "/devices/meter/replace", {"reading_wh": 5.0})
    assert status == 200  # every slot the meter measures counts from 5 Wh now
    assert [s["meter_wh"] for s in state["slots"]] == pytest.approx([5.0] * len(state["slots"]))
    status, state = call("POST", "/advance", {"seconds": 3600})
    drawn = state["slots"][empty - 1]
    assert drawn["meter_wh"] == pytest.approx(5.0 + 20.0, rel=0.01)  # 20 W for an hour
    assert drawn["soc"] == pytest.approx(2 * 20.0 * 0.72 / 40.88, rel=0.01)  # a larger iPad


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/slots/9/remove", None, 404, "no slot 9"),
        ("POST", "/slots/0/insert", {}, 404, "no slot 0"),
        ("POST", "/devices/fridge/fault", {"mode": "dead"}, 404, "no device 'fridge'"),
        ("POST", "/devices/meter/fault", {"mode": "smoking"}, 400, "fault mode"),
        ("POST", "/devices/meter/fault", {}, 400, "mode"),
        ("POST", "/door", {"open": "yes"}, 400, "'open' must be true or false"),
        ("POST", "/door", {}, 400, "missing 'open'"),
        ("POST", "/mains", {"on": False, "volts": 230}, 400, "unknown key(s) volts"),
        ("POST", "/advance", {"seconds": -5}, 400, "'seconds' must be between"),
        ("POST", "/advance", {"seconds": True}, 400, "'seconds' must be a number"),
        ("POST", "/advance", [], 400, "JSON object"),
        ("POST", "/slots/1/insert", {"soc": 2}, 400, "'soc' must be between"),
        ("POST", "/devices/fridge/replace", {}, 404, "no device 'fridge'"),
        ("POST", "/devices/meter/replace", {"reading_wh": -1}, 400, "'reading_wh' must be between"),
        ("GET", "/door", None, 405, "takes POST"),
        ("POST", "/state", None, 405, "takes GET"),
        ("GET", "/nothing", None, 404, "no such endpoint"),
    ],
)
def test_bad_requests_say_what_is_wrong(call: Call, method: str, path: str, body: object,
                                        status: int, message: str) -> None:
    got_status, payload = call(method, path, body)
    assert got_status == status
    assert message in payload["error"]


def test_invalid_json_is_a_400(call: Call) -> None:
    status, payload = call("POST", "/door", raw=b"{open: true")
    assert status == 400 and "not valid JSON" in payload["error"]


def test_inserting_into_an_occupied_slot_is_a_conflict(call: Call, sim: CabinetSim) -> None:
    full = next(s.slot for s in sim.truth().slots if s.present)
    status, payload = call("POST", f"/slots/{full}/insert", {"soc": 0.5})
    assert status == 409 and "occupied" in payload["error"]
