"""The rig of the broker-failover tests: a simulated cabinet with a real agent that knows two
brokers, the two brokers, and a recorder of what one broker delivers
(tests/integration/test_agent_failover.py, test_collector_two_brokers.py)."""

from __future__ import annotations

import json
import re
import signal
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.procs import ManagedProcess, console_script
from tests.support.services import Broker, start_mosquitto

__all__ = ["CABINET", "SITE", "Message", "Recorder", "Setup", "brokers", "collector_on_both",
           "connected_to", "setup"]

SITE, CABINET = "gs-failover", "schrank-1"
Message = dict[str, Any]


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5):
        pass


class Recorder:
    """Every message of the test cabinet one broker delivers, decoded, in arrival order."""

    def __init__(self, port: int, name: str) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"failover-{name}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port)
        # QoS 0: the recorder sends no PUBACKs, so a SIGKILLed broker holds no unread bytes of
        # it and its socket closes without a reset that could drop what was already delivered.
        self.client.subscribe(f"ladewache/v1/{SITE}/{CABINET}/+", qos=0)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise TimeoutError(f"recorder {name}: no SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        message = json.loads(msg.payload)
        message["_channel"] = msg.topic.rsplit("/", 1)[1]
        with self._lock:
            self._messages.append(message)

    def messages(self, channel: str | None = None,
                 where: Callable[[Message], bool] = lambda _: True) -> list[Message]:
        with self._lock:
            return [m for m in self._messages
                    if (channel is None or m["_channel"] == channel) and where(m)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Setup:
    tmp: Path
    control: str
    modbus_port: int
    processes: list[ManagedProcess]

    def agent(self, primary_port: int, failover_port: int) -> ManagedProcess:
        config = self.tmp / "agent.toml"
        config.write_text(
            f'[cabinet]\nsite = "{SITE}"\nid = "{CABINET}"\nmodel = "ladewache-8"\n'
            f'[buses.main]\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {self.modbus_port}\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {primary_port}\n'
            f'failover = ["127.0.0.1:{failover_port}"]\n'
            "keepalive_s = 5\nreconnect_min_s = 0.2\nreconnect_max_s = 1\n"
            "[polling]\ninterval_s = 0.1\ntelemetry_interval_s = 0.1\n"
            '[outbox]\npath = "outbox.sqlite"\nreplay_rate_per_s = 1000\n', encoding="utf-8")
        process = ManagedProcess("agent", [console_script("cabinet-agent"), "run", "--config",
                                           str(config)])
        self.processes.append(process)
        return process

    def door(self, open_: bool) -> None:
        _post(f"{self.control}/door", {"open": open_})


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    sim = ManagedProcess("sim", [console_script("cabinet-sim"), "cabinet", "--model", "ladewache-8",
                                 "--modbus-port", "0", "--control-port", "0", "--speed", "1",
                                 "--seed", "11", "--fill", "0"])
    processes = [sim]
    try:
        ready = sim.wait_for_line(lambda line: line.startswith("READY"))
        fields = dict(part.split("=", 1) for part in ready.split()[1:])
        yield Setup(tmp_path, fields["control"], int(fields["modbus"].rsplit(":", 1)[1]), processes)
    finally:
        for process in reversed(processes):  # the agent first, the simulator last
            process.stop()


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    a, b = start_mosquitto(tmp_path / "broker-a"), start_mosquitto(tmp_path / "broker-b")
    try:
        yield a, b
    finally:
        for broker in (a, b):
            broker.process.signal(signal.SIGCONT)
            broker.process.stop()


def connected_to(port: int) -> Callable[[str], bool]:
    pattern = re.compile(rf"MQTT: connected to 127\.0\.0\.1:{port}\b")
    return lambda line: pattern.search(line) is not None




def collector_on_both(tmp_path: Path, a_port: int, b_port: int,
                      more: str = "") -> tuple[ManagedProcess, str]:
    """A `cabinet-server` subscribed to the broker at ``a_port`` and, as its failover, the one at
    ``b_port`` (or a proxy to it), alert timings cut to fractions of a second, ``more`` TOML
    appended; (process, http base URL) once ready."""
    config = tmp_path / "server.toml"
    config.write_text(f"""
[mqtt]
host = "127.0.0.1"
port = {a_port}
failover = ["127.0.0.1:{b_port}"]
client_id = "collector-two-brokers"
reconnect_min_s = 0.2
reconnect_max_s = 1.0
[http]
port = 0
auth = false
[state]
dir = "state"
[alerts]
offline_pending_s = 0.5
min_silence_s = 2.0
tick_s = 0.1
settle_s = 0.5
{more}""", encoding="utf-8")
    process = ManagedProcess("collector", [console_script("cabinet-server"), "run", "--config",
                                           str(config)])
    line = process.wait_for_line(lambda ln: ln.startswith("READY http="), timeout=30)
    return process, line.split("=", 1)[1]
