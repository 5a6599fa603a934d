"""``cabinet-sim demo``: a small simulated school on this machine, stopped cleanly with Ctrl-C.

Starts a broker (the system's Mosquitto, else the embedded amqtt one), three simulated cabinets of
different sizes, one agent for each, and the collector, with embedded defaults. Logs go to files.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SITE = "gs-demo"
CABINETS = (("schrank-a", "ladewache-8"), ("schrank-b", "ladewache-16"), ("schrank-c", "ladewache-32"))


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[str]
    log_path: Path
    ready: str = ""


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port(preferred: int | None = None) -> int:
    if preferred and _port_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Demo:
    def __init__(self, workdir: Path, speed: float) -> None:
        self.workdir = workdir
        self.speed = speed
        self.children: list[Child] = []
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], ready_prefix: str | None, timeout: float = 30) -> Child:
        """Start a child; when ``ready_prefix`` is given, wait for that line on its stdout."""
        log_path = self.logs / f"{name}.log"
        log = log_path.open("w", encoding="utf-8")
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE if ready_prefix else log, stderr=log, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )
        child = Child(name, proc, log_path)
        self.children.append(child)
        if ready_prefix is None:
            return child
        assert proc.stdout is not None
        found = threading.Event()

        def pump() -> None:  # keep reading so the child never blocks on a full pipe
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if not found.is_set() and line.startswith(ready_prefix):
                    child.ready = line.strip()
                    found.set()

        threading.Thread(target=pump, daemon=True, name=f"pump-{name}").start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log_path}:\n{log_path.read_text()[-2000:]}")
        return child

    def stop_all(self) -> None:
        """Agents first, broker last: each agent can still leave its retained "stopped" status."""
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(10)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait(5)


def _start_broker(demo: Demo, kind: str) -> tuple[int, str]:
    port = _free_port(1883)
    mosquitto = shutil.which("mosquitto")
    if mosquitto is None and os.path.exists("/usr/sbin/mosquitto"):
        mosquitto = "/usr/sbin/mosquitto"  # root's PATH has /usr/sbin, a user's often not
    if kind == "mosquitto" and mosquitto is None:
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto), try --broker embedded")
    if mosquitto and kind != "embedded":
        conf = demo.workdir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "log_dest stderr\n", encoding="utf-8")
        demo.start("broker", [mosquitto, "-c", str(conf)], None)
        deadline = time.monotonic() + 10
        while _port_free(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {port}; see {demo.logs / 'broker.log'}")
            time.sleep(0.05)
        return port, f"Mosquitto ({mosquitto})"
    if importlib.util.find_spec("amqtt") is None:
        raise SystemExit("No MQTT broker: install mosquitto, or `pip install amqtt` (make demo does).")
    demo.start("broker", [sys.executable, "-m", "simulators.broker", "--port", str(port)], "READY")
    return port, "embedded amqtt broker"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _demo_admin(config: Path) -> tuple[str, str]:
    """The demo's district admin (created, or given a new password on a later run) and an API
    token for the summary lines: (password, token)."""
    def user(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "server", "user", *args, "--config", str(config)],
                              capture_output=True, text=True, timeout=60, check=False)

    made = user("add", "admin", "--role", "admin")
    if made.returncode != 0:
        made = user("passwd", "admin")
    made.check_returncode()
    password = next(ln.split(": ", 1)[1] for ln in made.stdout.splitlines() if ln.startswith("password: "))
    token = user("token", "admin", "--label", "demo summary")
    token.check_returncode()
    return password, token.stdout.strip()


def _api(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=2) as response:
        return dict(json.loads(response.read()))


def _fleet_summary(http: str, token: str) -> str:
    fleet = _api(f"{http}/api/fleet", token)
    alerts = _api(f"{http}/api/alerts?state=active", token)
    states: Counter[str] = Counter()
    for cabinet in fleet.get("cabinets", []):
        for slot in cabinet.get("slots", []):
            states[slot.get("state", "?")] += 1
    parts = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
    cabinets, open_alerts = len(fleet.get("cabinets", [])), len(alerts.get("alerts", []))
    return f"{cabinets} cabinets | slots: {parts} | open alerts: {open_alerts}"


def run(speed: float = 60.0, workdir: Path | None = None, broker: str = "auto") -> int:
    workdir = workdir or Path("var/demo").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(workdir, speed)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        broker_port, broker_kind = _start_broker(demo, broker)
        http_port = _free_port(8080)
        server_conf = _write(workdir / "server.toml", (
            f"[mqtt]\nhost = \"127.0.0.1\"\nport = {broker_port}\nusername = \"ladewache-server\"\n"
            f"[http]\nhost = \"127.0.0.1\"\nport = {http_port}\n"
            "[alerts]\noffline_pending_s = 30\n"
            '[state]\ndir = "state"\n'
            "# no [tsdb] url: the demo stores no time series, the server says so and runs on\n"))
        password, token = _demo_admin(server_conf)
        server = demo.start("server", [sys.executable, "-m", "server", "run", "--config", str(server_conf)],
                            "READY")
        http = server.ready.split("http=", 1)[1]
        rows = []
        for number, (cabinet_id, model) in enumerate(CABINETS):
            sim = demo.start(f"sim-{cabinet_id}", [
                sys.executable, "-m", "simulators", "cabinet", "--model", model, "--modbus-port", "0",
                "--control-port", "0", "--speed", str(speed), "--seed", str(number + 1),
                "--scenario", "school-day", "--asset-prefix", f"DEMO-{cabinet_id[-1].upper()}-"],
                "READY")
            fields = dict(part.split("=", 1) for part in sim.ready.split()[1:])
            modbus_host, modbus_port = fields["modbus"].rsplit(":", 1)
            slots = int(model.rsplit("-", 1)[1])
            tags = "\n".join(f'{i} = "DEMO-{cabinet_id[-1].upper()}-{i:02d}"' for i in range(1, slots + 1))
            agent_conf = _write(workdir / f"agent-{cabinet_id}.toml", (
                f"[cabinet]\nsite = \"{SITE}\"\nid = \"{cabinet_id}\"\nmodel = \"{model}\"\n"
                f"[cabinet.asset_tags]\n{tags}\n"
                f"[buses.main]\ntransport = \"tcp\"\nhost = \"{modbus_host}\"\nport = {modbus_port}\n"
                f"[mqtt]\nhost = \"127.0.0.1\"\nport = {broker_port}\nusername = \"{SITE}-{cabinet_id}\"\n"
                "keepalive_s = 10\n[polling]\ninterval_s = 1.0\ntelemetry_interval_s = 5.0\n"))
            demo.start(f"agent-{cabinet_id}", [sys.executable, "-m", "cabinet_agent", "run", "--config",
                                               str(agent_conf)], None)
            rows.append((cabinet_id, model, fields["modbus"], fields["control"]))
        print("\nLadewache demo is running (Ctrl-C stops everything)\n")
        print(f"  broker      mqtt://127.0.0.1:{broker_port}  ({broker_kind})")
        print(f"  server      {http}")
        print(f"              {http}/api/fleet    {http}/api/alerts    {http}/docs")
        print(f"  dashboard   {http}/  log in as admin / {password}  (district admin, made for this demo)")
        print("  time series none configured: the server keeps fleet state and alerts only")
        for cabinet_id, model, modbus, control in rows:
            print(f"  {SITE}/{cabinet_id:<10} {model:<13} modbus {modbus:<16} sim control {control}/state")
        print(f"\n  simulated time runs {speed:g}x; logs in {demo.logs}")
        print(f"  try: curl -X POST {rows[0][3]}/slots/1/remove   then watch {SITE}/{rows[0][0]} "
              "in the dashboard")
        print(f"       kill the agent of {rows[0][0]} and watch {http}/alerts\n")
        reported: set[str] = set()
        while not stop.wait(15):
            for child in demo.children:
                if child.proc.poll() is not None and child.name not in reported:
                    reported.add(child.name)
                    print(f"! {child.name} exited with {child.proc.returncode}; see {child.log_path}")
            try:
                print(time.strftime("%H:%M:%S"), _fleet_summary(http, token), flush=True)
            except OSError as exc:
                print(f"server not answering: {exc}")
        print("\nstopping …")
        return 0
    finally:
        demo.stop_all()
        print("all stopped.")
