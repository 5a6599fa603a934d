"""simulator → agent → Mosquitto → server → VictoriaMetrics, every part a real process."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.api_auth import admin_token, api_get, api_post
from tests.support.procs import ManagedProcess, console_script, wait_until
from tests.support.services import Broker, VictoriaMetrics

pytestmark = pytest.mark.integration

POLL_S = 1.0
KEEPALIVE_S = 5
SITE = "gs-e2e"
CABINET = "schrank-1"


def _post(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read() or b"{}"))


@dataclass
class System:
    sim: ManagedProcess
    control: str
    modbus_port: int
    server: ManagedProcess
    http: str
    agent_config: Path
    token: str = ""
    agent: ManagedProcess | None = None

    def start_agent(self) -> ManagedProcess:
        self.agent = ManagedProcess("agent", [console_script("cabinet-agent"), "run", "--config",
                                              str(self.agent_config)])
        return self.agent

    def slot(self, number: int) -> dict | None:
        for cabinet in api_get(f"{self.http}/api/fleet", self.token)["cabinets"]:
            if cabinet["site"] == SITE and cabinet["cabinet"] == CABINET:
                return next(s for s in cabinet["slots"] if s["slot"] == number)
        return None

    def offline_alerts(self) -> list[dict]:
        return [a for a in api_get(f"{self.http}/api/alerts?state=all", self.token)["alerts"]
                if a["labels"].get("alertname") == "cabinet_offline"
                and a["labels"].get("site") == SITE and a["labels"].get("cabinet") == CABINET]


@pytest.fixture
def system(tmp_path: Path, broker: Broker, victoria: VictoriaMetrics) -> Iterator[System]:
    sim = ManagedProcess("sim", [console_script("cabinet-sim"), "cabinet", "--model", "ladewache-8",
                                 "--modbus-port", "0", "--control-port", "0", "--speed", "1",
                                 "--seed", "7", "--fill", "0"])
    ready = sim.wait_for_line(lambda line: line.startswith("READY"))
    fields = dict(part.split("=", 1) for part in ready.split()[1:])
    modbus_port = int(fields["modbus"].rsplit(":", 1)[1])
    server_conf = tmp_path / "server.toml"
    server_conf.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nclient_id = "e2e-server"\n'
        f'[tsdb]\nurl = "{victoria.url}"\ntoken = "unused"\norg = "ladewache"\nbucket = "ladewache"\n'
        "flush_interval_s = 0.1\n"
        '[http]\nhost = "127.0.0.1"\nport = 0\n'
        '[state]\ndir = "state"\n'
        "[alerts]\noffline_pending_s = 0\ntick_s = 0.2\n")
    token = admin_token(tmp_path / "state")
    server = ManagedProcess("server", [console_script("cabinet-server"), "run", "--config", str(server_conf)])
    http = server.wait_for_line(lambda line: line.startswith("READY")).split("http=", 1)[1]
    # The iPad comes from the MDM's export (imported by the CLI while the collector runs) and
    # is put in slot 1 by a technician: the agent carries no asset tags.
    mdm = tmp_path / "jamf.csv"
    mdm.write_text("Display Name,Serial Number,Asset Tag\nKlasse 3a - 01,DMPXE2E00001,E2E-0001\n")
    imported = subprocess.run([console_script("cabinet-server"), "inventory", "import", str(mdm),
                               "--config", str(server_conf)], capture_output=True, text=True,
                              timeout=60)
    assert imported.returncode == 0 and "1 neu" in imported.stdout, imported
    placed = api_post(f"{http}/api/inventory/place", token,
                      {"asset_tag": "E2E-0001", "site": SITE, "cabinet": CABINET, "slot": 1})
    assert placed["slot"] == 1 and placed["serial"] == "DMPXE2E00001"
    agent_conf = tmp_path / "agent.toml"
    agent_conf.write_text(
        f'[cabinet]\nsite = "{SITE}"\nid = "{CABINET}"\nmodel = "ladewache-8"\n'
        f'[buses.main]\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {modbus_port}\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive_s = {KEEPALIVE_S}\n'
        "reconnect_min_s = 0.2\nreconnect_max_s = 1\n"
        f"[polling]\ninterval_s = {POLL_S}\ntelemetry_interval_s = 2\n")
    system = System(sim, fields["control"], modbus_port, server, http, agent_conf, token)
    yield system
    for process in (system.agent, server, sim):
        if process is not None:
            process.stop()


def _latest_state_in_tsdb(victoria: VictoriaMetrics, slot: int) -> float | None:
    series = victoria.export(f'slot_state{{site="{SITE}",cabinet="{CABINET}",slot="{slot}"}}')
    if not series:
        return None
    samples = sorted(zip(series[0]["timestamps"], series[0]["values"], strict=True))
    return float(samples[-1][1])


def test_ipad_removed_shows_empty_and_killed_agent_raises_offline_alert(
        system: System, victoria: VictoriaMetrics) -> None:
    _post(f"{system.control}/slots/1/insert", {"soc": 0.3})
    agent = system.start_agent()

    slot = wait_until(lambda: (s := system.slot(1)) and s["state"] == "charging" and s, 20,
                      "slot 1 charging in /api/fleet")
    assert slot["asset_tag"] == "E2E-0001"
    assert slot["power_w"] > 10
    wait_until(lambda: _latest_state_in_tsdb(victoria, 1) == 1, 10, "slot 1 charging in the TSDB")

    # Take the iPad out: the slot is empty in the API and in the TSDB within two poll intervals.
    removed_at = time.monotonic()
    _post(f"{system.control}/slots/1/remove")
    wait_until(lambda: (s := system.slot(1)) and s["state"] == "empty", 2 * POLL_S,
               "slot 1 empty in /api/fleet")
    wait_until(lambda: _latest_state_in_tsdb(victoria, 1) == 0,
               max(0.1, 2 * POLL_S - (time.monotonic() - removed_at)), "slot 1 empty in the TSDB")

    # SIGKILL: no goodbye, so the broker sends the Last Will; the alert follows.
    assert system.offline_alerts() == []
    agent.kill()
    killed_at = time.monotonic()
    alerts = wait_until(lambda: [a for a in system.offline_alerts() if a["state"] == "firing"],
                        KEEPALIVE_S * 1.5 + 1, "cabinet_offline firing in /api/alerts")
    took = time.monotonic() - killed_at
    assert alerts[0]["annotations"]["reason"] == "lwt", alerts
    assert took <= KEEPALIVE_S * 1.5 + 1

    # Back again: the alert resolves.
    again = system.start_agent()
    try:
        wait_until(lambda: [a for a in system.offline_alerts() if a["state"] == "resolved"], 20,
                   "cabinet_offline resolved")
    except TimeoutError:
        pytest.fail(f"not resolved; alerts: {system.offline_alerts()}\nagent:\n{again.output()[-3000:]}"
                    f"\nserver:\n{system.server.output()[-3000:]}")
    assert [a for a in system.offline_alerts() if a["state"] in ("firing", "pending")] == []


def test_sigterm_leaves_a_retained_stopped_status(system: System, broker: Broker) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    agent = system.start_agent()
    wait_until(lambda: system.slot(1) is not None, 20, "cabinet in /api/fleet")
    assert agent.stop() == 0
    assert "stopped by SIGTERM" in agent.output()

    retained: dict[str, bytes] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-reader")
    client.on_message = lambda _c, _u, msg: retained.__setitem__(msg.topic, msg.payload)
    client.connect("127.0.0.1", broker.port)
    client.subscribe(f"ladewache/v1/{SITE}/{CABINET}/status", qos=1)
    client.loop_start()
    try:
        payload = wait_until(lambda: retained.get(f"ladewache/v1/{SITE}/{CABINET}/status"), 10,
                             "retained status")
    finally:
        client.loop_stop()
        client.disconnect()
    status = json.loads(payload)
    assert (status["status"], status["reason"]) == ("stopped", "stopped by SIGTERM")
