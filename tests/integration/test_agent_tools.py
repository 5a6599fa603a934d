"""The installer's tools and the running agent, as processes, against ``cabinet-sim cabinet --rtu``.

``scan`` finds address and baud rate, ``watch --once`` shows raw readings, faults and slot states,
and ``cabinet-agent run`` publishes over MQTT from an RS-485 bus, through a dead device and an
adapter that is pulled out and put back.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.procs import ManagedProcess, console_script
from tests.support.services import Broker

pytestmark = pytest.mark.integration

SITE, CABINET = "gs-rtu", "schrank-1"


@dataclass
class RtuSim:
    process: ManagedProcess
    link: Path
    control: str

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(self.control + path, data=data, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return dict(json.loads(response.read()))


@pytest.fixture
def rtu_sim(tmp_path: Path) -> Iterator[RtuSim]:
    process = ManagedProcess("sim", [
        console_script("cabinet-sim"), "cabinet", "--model", "ladewache-8", "--modbus-port", "0",
        "--control-port", "0", "--rtu", "--baud", "19200", "--serial-dir", str(tmp_path / "dev"),
        "--seed", "2", "--speed", "1"])
    try:
        ready = process.wait_for_line(lambda line: line.startswith("READY"))
        fields = dict(part.split("=", 1) for part in ready.split()[1:])
        yield RtuSim(process, Path(fields["rtu"]), fields["control"])
    finally:
        process.stop()


def _agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cabinet_agent", "--log-level", "WARNING", *args],
                          capture_output=True, text=True, timeout=60)


def _config(tmp_path: Path, port: Path | str, broker_port: int = 1883) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[cabinet]\nsite = "{SITE}"\nid = "{CABINET}"\nmodel = "ladewache-8"\n'
        f'[buses.main]\ntransport = "rtu"\nport = "{port}"\nbaudrate = 19200\ntimeout_s = 0.05\n'
        f'reopen_min_s = 0.2\nreopen_max_s = 0.5\n'
        f'[mqtt]\nport = {broker_port}\nkeepalive_s = 10\n'
        f'[polling]\ninterval_s = 0.2\ntelemetry_interval_s = 0.2\n')
    return path


def test_scan_finds_every_device_at_its_baud_rate(rtu_sim: RtuSim) -> None:
    result = _agent("scan", "--port", str(rtu_sim.link), "--bauds", "9600,19200",
                    "--addresses", "1-4", "--timeout-ms", "30")
    assert result.returncode == 0, result.stderr
    found = [line for line in result.stdout.splitlines() if line.startswith("found")]
    # ladewache-8: meter 1, io 2, climate 3; nothing at 9600, nothing at 4
    assert found == [f"found baud=19200 address={a} answer=exception 2" for a in (1, 2, 3)]
    assert "3 device(s) found" in result.stdout


def test_scan_says_when_nothing_or_no_port_is_there(rtu_sim: RtuSim, tmp_path: Path) -> None:
    result = _agent("scan", "--port", str(rtu_sim.link), "--bauds", "19200", "--addresses", "10-12",
                    "--timeout-ms", "20")
    assert result.returncode == 1 and "0 device(s) found" in result.stdout
    result = _agent("scan", "--port", str(tmp_path / "nope"), "--addresses", "1")
    assert result.returncode == 1 and "is not there" in result.stderr
    result = _agent("scan", "--port", str(rtu_sim.link), "--addresses", "0-300")
    assert result.returncode == 2 and "1..247" in result.stderr


def test_watch_once_shows_readings_faults_and_slot_states(rtu_sim: RtuSim, tmp_path: Path) -> None:
    config = _config(tmp_path, rtu_sim.link)
    check = _agent("check-config", "--config", str(config))
    assert check.returncode == 0 and "present at /dev/pts/" in check.stdout
    result = _agent("watch", "--config", str(config), "--once")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{SITE}/{CABINET}  model ladewache-8 (8 slots)")
    assert "door closed   mains on" in lines[1]
    rows = {line.split()[0]: line for line in lines if line.split()[:1] in (["meter"], ["io"], ["climate"])}
    assert rows["meter"].split()[1] == "ok" and "power=" in rows["meter"]
    assert "input=0 1 0 0 0 0 0 0" in rows["io"]
    assert "\x1b[" not in result.stdout  # --once prints plain text

    rtu_sim.post("/devices/climate/fault", {"mode": "dead"})
    result = _agent("watch", "--config", str(config), "--once")
    assert result.returncode == 0
    climate = next(line for line in result.stdout.splitlines() if line.startswith("climate"))
    assert "FAULT" in climate and "no reply" in climate
    assert "temperature ?" in result.stdout


class Telemetry:
    """Telemetry of the test cabinet as it arrives over MQTT."""

    def __init__(self, port: int) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rtu-reader")
        self.client.on_message = lambda _c, _u, msg: self.messages.put(json.loads(msg.payload))
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"ladewache/v1/{SITE}/{CABINET}/telemetry", qos=1)
        self.client.loop_start()

    def wait_for(self, check: Any, timeout: float = 15) -> dict[str, Any]:
        seen = None
        try:
            while True:
                seen = self.messages.get(timeout=timeout)
                if check(seen):
                    return seen
        except queue.Empty:
            raise AssertionError(f"no matching telemetry within {timeout} s; last: {seen}") from None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _health(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in message["devices"]}


def test_the_agent_publishes_from_rs485_through_faults_and_a_pulled_adapter(
        rtu_sim: RtuSim, tmp_path: Path, broker: Broker) -> None:
    config = _config(tmp_path, rtu_sim.link, broker.port)
    telemetry = Telemetry(broker.port)
    agent = ManagedProcess("agent", [console_script("cabinet-agent"), "run", "--config", str(config)])
    try:
        first = telemetry.wait_for(lambda m: all(d["ok"] for d in m["devices"]))
        assert None not in first["power_w"] and first["mains"] == "on"

        rtu_sim.post("/devices/meter/fault", {"mode": "dead"})
        dead = telemetry.wait_for(lambda m: not _health(m)["meter"]["ok"])
        assert dead["power_w"] == [None] * 8  # unknown, never 0 or the last value
        assert "no reply" in _health(dead)["meter"]["error"]
        assert _health(dead)["io"]["ok"] and dead["mains"] == "on"
        rtu_sim.post("/devices/meter/fault", {"mode": "none"})
        telemetry.wait_for(lambda m: all(d["ok"] for d in m["devices"]))

        rtu_sim.post("/serial/main/unplug")
        gone = telemetry.wait_for(lambda m: not any(d["ok"] for d in m["devices"]))
        assert "bus main" in _health(gone)["io"]["error"] and gone["door"] == "unknown"
        status = rtu_sim.post("/serial/main/replug")
        assert status["plugged"] and status["link"] == str(rtu_sim.link)
        back = telemetry.wait_for(lambda m: all(d["ok"] for d in m["devices"]))
        assert None not in back["power_w"]
        assert agent.proc.poll() is None  # no restart needed
    finally:
        telemetry.close()
        assert agent.stop() == 0
    assert "adapter" in agent.output()
