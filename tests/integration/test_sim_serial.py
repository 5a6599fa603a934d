"""The simulator's serial side: fault modes, the control API's unplug/replug, wrong baud rates."""

from __future__ import annotations

import contextlib
import json
import os
import termios
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient

from cabinet_agent.cabinet_model import load_cabinet_model
from simulators.cabinet import CabinetSim, DeviceFault
from simulators.control import ControlServer
from simulators.modbus_server import ModbusServerThread
from simulators.rtu_frames import crc_ok, with_crc
from tests.support.procs import wait_until
from tests.support.serial_sim import rtu_slaves

pytestmark = pytest.mark.integration


@pytest.fixture
def sim() -> CabinetSim:
    sim = CabinetSim(load_cabinet_model("ladewache-8"), start=datetime(2026, 11, 30, 7), seed=1)
    sim.advance(60)
    return sim


def test_stuck_freezes_what_a_device_reports_and_line_boards_keep_no_address(sim: CabinetSim) -> None:
    sim.set_device_fault("climate", DeviceFault.STUCK)
    frozen = sim.device_truth("climate")
    sim.advance(1800)
    assert sim.device_truth("climate") is frozen
    assert sim.device_truth("meter").sim_time > frozen.sim_time
    sim.set_device_fault("climate", "none")
    assert sim.device_truth("climate").sim_time == sim.truth().sim_time
    board = CabinetSim(load_cabinet_model("ladewache-16-line"), start=datetime(2026, 11, 30, 7))
    with pytest.raises(ValueError, match="no address to lose"):
        board.set_device_fault("board", "address-reset")


def test_tcp_shows_rs485_faults_the_way_a_gateway_does(sim: CabinetSim) -> None:
    with ModbusServerThread(sim) as (host, port), \
            ModbusTcpClient(host, port=port, timeout=0.5, retries=0) as client:
        sim.set_device_fault("climate", "garbage")
        response = client.read_input_registers(1, count=1, device_id=3)
        assert response.isError() and response.exception_code == 0x0B  # target did not answer
        sim.set_device_fault("climate", "address-reset")  # now at 1, with the meter
        response = client.read_input_registers(0, count=1, device_id=1)
        assert response.isError() and response.exception_code == 0x0B
        sim.set_device_fault("climate", "none")
        assert not client.read_input_registers(0, count=1, device_id=1).isError()


def _request(path: str, port_fd: int, frame: bytes) -> bytes:
    """Send ``frame`` on the agent's side of the pty and wait for a whole reply."""
    os.write(port_fd, frame)
    data = bytearray()

    def reply() -> bool:
        with contextlib.suppress(BlockingIOError):  # nothing yet
            data.extend(os.read(port_fd, 256))
        return len(data) >= 5 and crc_ok(bytes(data))

    wait_until(reply, 5, f"a reply on {path}", interval=0.002)
    return bytes(data)


def test_slaves_answer_only_at_their_baud_rate(sim: CabinetSim, tmp_path: Path) -> None:
    link = tmp_path / "rtu"
    with rtu_slaves(sim, link, baudrate=9600) as (_, server):
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            attrs = termios.tcgetattr(fd)
            attrs[3] &= ~(termios.ECHO | termios.ICANON)
            attrs[4] = attrs[5] = termios.B9600
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            request = with_crc(bytes.fromhex("02 02 00 00 00 08"))
            assert _request(str(link), fd, request)[:3] == bytes.fromhex("02 02 01")
            attrs[4] = attrs[5] = termios.B19200
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            os.write(fd, request)
            wait_until(lambda: server.ignored == 1, 5, "the request heard as noise")
        finally:
            os.close(fd)
    assert server.requests == {2: 1} and server.replies == {2: 1}


def _post(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_the_control_api_pulls_and_replugs_the_adapter(sim: CabinetSim, tmp_path: Path) -> None:
    with rtu_slaves(sim, tmp_path / "by-id" / "usb-sim") as (_, server):
        control = ControlServer(sim, port=0, serial={"main": server})
        control.start()
        try:
            with urllib.request.urlopen(control.url + "/serial", timeout=5) as response:
                listing = json.loads(response.read())
            assert listing["main"]["plugged"] and listing["main"]["kind"] == "rtu"
            status, body = _post(control.url + "/serial/main/unplug")
            assert status == 200 and not body["plugged"]
            assert not (tmp_path / "by-id" / "usb-sim").exists()
            status, body = _post(control.url + "/serial/main/replug",
                                 {"link": str(tmp_path / "ttyUSB1")})
            assert status == 200 and body["plugged"] and body["link"] == str(tmp_path / "ttyUSB1")
            assert os.path.realpath(tmp_path / "ttyUSB1").startswith("/dev/pts/")
            assert _post(control.url + "/serial/aux/unplug")[0] == 404
            assert _post(control.url + "/serial/main/replug", {"link": "relative"})[0] == 400
            assert _post(control.url + "/serial/main/replug", {"path": "/x"})[0] == 400
            status, body = _post(control.url + "/devices/io/fault", {"mode": "address-reset"})
            assert status == 200 and body["device_faults"]["io"] == "address-reset"
        finally:
            control.stop()
