"""Fault-to-notification latency: from a fault in a simulated cabinet to the webhook that says so.

    .venv/bin/python bench/fault_latency.py                  # 5 cabinets, 2 kinds of fault each

Starts Mosquitto, VictoriaMetrics, ``cabinet-server`` (device_fault ``pending_s = 0``,
``offline_pending_s = 0``, ``group_wait_s = 0.1``, rule and notify ticks every 0.1 s, a webhook
for the district team pointing at a receiver in this script), and for each cabinet a
``cabinet-sim cabinet`` process and a ``cabinet-agent run`` process (poll every 1 s, Modbus TCP
device timeout 0.5 s with 1 retry: the agent's own defaults). Then, per cabinet:

* **device fault**: ``POST /devices/climate/fault {"mode": "dead"}`` on the simulator's control
  API; the clock runs until a webhook carrying a firing ``device_fault`` for that cabinet arrives.
  The agent's share is a poll interval at most plus timeout × (retries + 1) = up to 2 s.
* **cabinet offline**: SIGKILL of the agent (a Pi losing power); the broker sends its Last Will
  at once (the TCP connection closes); until a firing ``cabinet_offline`` arrives.

With production pending periods (device_fault 60 s, offline 120 s, group_wait 30 s) add those.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fleet_support import Services, console_script, load, machine, wait_until

from tests.support.procs import ManagedProcess

SITE = "gs-latency"


class Arrivals:
    """First arrival time of each firing (alertname, cabinet) at the webhook."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first: dict[tuple[str, str], float] = {}

    def record(self, payload: dict[str, Any], at: float) -> None:
        with self.lock:
            for alert in payload.get("alerts", []):
                labels = alert.get("labels", {})
                if alert.get("state", "firing") == "firing":
                    self.first.setdefault((labels.get("alertname", ""), labels.get("cabinet", "")), at)

    def get(self, alertname: str, cabinet: str) -> float | None:
        with self.lock:
            return self.first.get((alertname, cabinet))


@contextmanager
def webhook_receiver(arrivals: Arrivals) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            at = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrivals.record(json.loads(body), at)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def _server_config(hook: str) -> str:
    return (
        "[alerts]\noffline_pending_s = 0\ntick_s = 0.1\nsettle_s = 0\n"
        "[alerts.rules.device_fault]\npending_s = 0\n"
        "[notify]\ngroup_wait_s = 0.1\ngroup_interval_s = 0.1\nrepeat_interval_s = 3600\ntick_s = 0.1\n"
        '[organisation]\ndistrict = "Bench"\ndistrict_team = "bench-it"\n'
        '[[organisation.teams]]\nid = "bench-it"\nname = "Bench IT"\n'
        f'[organisation.teams.contacts]\nwebhooks = [{{ url = "{hook}" }}]\n')


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5):
        pass


def _cabinet(services: Services, i: int) -> tuple[str, ManagedProcess, str]:
    cabinet = f"schrank-{i:02d}"
    sim = services.process(f"sim-{i}", [console_script("cabinet-sim"), "cabinet", "--model",
                                         "ladewache-16", "--modbus-port", "0", "--control-port", "0",
                                         "--seed", str(i)])
    fields = dict(p.split("=", 1) for p in sim.wait_for_line(lambda s: s.startswith("READY")).split()[1:])
    port = fields["modbus"].rsplit(":", 1)[1]
    conf = services.dir / f"agent-{i}.toml"
    conf.write_text(
        f'[cabinet]\nsite = "{SITE}"\nid = "{cabinet}"\nmodel = "ladewache-16"\n'
        f'[buses.main]\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {services.broker_port}\nkeepalive_s = 10\n'
        "[polling]\ninterval_s = 1.0\ntelemetry_interval_s = 5.0\n", encoding="utf-8")
    agent = services.process(f"agent-{i}", [console_script("cabinet-agent"), "run", "--config",
                                             str(conf)])
    return cabinet, agent, fields["control"]


def _summary(name: str, values: list[float]) -> str:
    if not values:
        return f"| {name} | none arrived | | | |"
    return (f"| {name} | {len(values)} | {statistics.median(values):.2f} s | {min(values):.2f} s | "
            f"{max(values):.2f} s |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cabinets", type=int, default=5)
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load {load()}")
    arrivals = Arrivals()
    device: list[float] = []
    offline: list[float] = []
    with webhook_receiver(arrivals) as hook, Services("ladewache-latency-") as services:
        _, http = services.start_server("collector", _server_config(hook))
        cabinets = [_cabinet(services, i) for i in range(1, args.cabinets + 1)]

        def known() -> bool:
            with urllib.request.urlopen(f"{http}/api/fleet", timeout=5) as response:
                fleet = json.loads(response.read())
            return sum(c["site"] == SITE for c in fleet["cabinets"]) == len(cabinets)

        wait_until(known, 60, "every cabinet in /api/fleet", interval=0.2)
        time.sleep(2)  # a few polls, so every slot and device has a state
        for cabinet, _, control in cabinets:
            started = time.time()
            _post(f"{control}/devices/climate/fault", {"mode": "dead"})
            at = wait_until(lambda c=cabinet: arrivals.get("device_fault", c), 30,
                            f"device_fault webhook for {cabinet}", interval=0.01)
            device.append(at - started)
        for cabinet, agent, _ in cabinets:
            started = time.time()
            agent.kill()
            at = wait_until(lambda c=cabinet: arrivals.get("cabinet_offline", c), 30,
                            f"cabinet_offline webhook for {cabinet}", interval=0.01)
            offline.append(at - started)
    print("\n| fault | samples | median | min | max |")
    print("|---|---|---|---|---|")
    print(_summary("device dead (sensor stops answering) → webhook", device))
    print(_summary("agent killed (Last Will) → webhook", offline))
    print(f"load average after: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
