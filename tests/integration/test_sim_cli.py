"""``cabinet-sim cabinet`` as a process: READY line, both servers, clean stop on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from pymodbus.client import ModbusTcpClient

pytestmark = pytest.mark.integration

READY = re.compile(r"^READY modbus=(?P<host>[\d.]+):(?P<port>\d+) control=(?P<url>http://\S+)$")


@pytest.fixture
def simulator() -> Iterator[tuple[subprocess.Popen[str], re.Match[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators", "cabinet", "--model", "ladewache-16",
         "--modbus-port", "0", "--control-port", "0", "--speed", "60",
         "--start", "2026-11-30T07:00", "--seed", "3", "--fill", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""  # blocks until READY or exit
        match = READY.match(line.strip())
        assert match, f"no READY line: {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
        yield proc, match
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_ready_line_then_both_servers_answer_then_sigterm_exits_0(
        simulator: tuple[subprocess.Popen[str], re.Match[str]]) -> None:
    proc, ready = simulator
    with urllib.request.urlopen(ready["url"] + "/state", timeout=5) as response:
        state = json.loads(response.read())
    assert state["model"] == "ladewache-16" and state["speed"] == 60.0
    assert sum(s["present"] for s in state["slots"]) == 8
    assert state["sim_time"] >= "2026-11-30T07:00:00"

    request = urllib.request.Request(ready["url"] + "/mains", data=b'{"on": false}', method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass
    with ModbusTcpClient(ready["host"], port=int(ready["port"]), timeout=2, retries=0) as client:
        response = client.read_input_registers(0, count=16, device_id=1)
        assert response.registers == [0] * 16  # mains off: every slot reads 0 W
        assert client.read_discrete_inputs(0, count=8, device_id=2).bits[1] is False

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert proc.stdout is not None and proc.stdout.read() == ""  # exactly one line on stdout


def test_a_bad_model_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "simulators", "cabinet", "--model", "nope"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "unknown cabinet model 'nope'" in result.stderr
    assert result.stdout == ""
