"""``cabinet-sim demo``: a small simulated school on this machine, stopped cleanly with Ctrl-C.

Starts a broker (the system's Mosquitto, else the embedded amqtt one), the three cabinets of
``demo_org`` (one with presence switches), one agent for each, and the collector with the demo's
organisation, users and shortened alert times, so that every hint the banner prints raises its
alert within a minute. Logs go to files.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
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
from datetime import UTC, datetime
from pathlib import Path

from cabinet_agent.cabinet_model import load_cabinet_model

from .demo_org import (
    CABINETS,
    DISTRICT,
    DOOR_PENDING_S,
    HINT_SLOTS,
    MUNICIPALITY,
    NOT_CHARGING_PENDING_S,
    OFFLINE_CABINET,
    OFFLINE_PENDING_S,
    PRESENCE_CABINET,
    SCHOOL,
    SITE,
    USERS,
    DemoCabinet,
    alerts_toml,
    organisation_toml,
    return_checks,
)

STATE_DIR = "state"  # the server's [state] dir, relative to the workdir: alerts and users


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[str]
    log_path: Path
    ready: str = ""


@dataclass(frozen=True)
class Running:
    """A started cabinet: simulator and agent."""

    cabinet: DemoCabinet
    modbus: str
    control: str
    agent_pid: int


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


def _server_toml(broker_port: int, http_port: int, slot_counts: dict[str, int], now: datetime) -> str:
    return (
        f"[mqtt]\nhost = \"127.0.0.1\"\nport = {broker_port}\nusername = \"ladewache-server\"\n"
        f"[http]\nhost = \"127.0.0.1\"\nport = {http_port}\n"
        f'[state]\ndir = "{STATE_DIR}"\n'
        "# no [tsdb] url: the demo stores no time series, the server says so and runs on\n\n"
        f"{alerts_toml()}\n{organisation_toml(slot_counts, return_checks(now))}")


def _agent_toml(cabinet: DemoCabinet, slots: int, modbus: str, broker_port: int,
                speed: float) -> str:
    host, port = modbus.rsplit(":", 1)
    # No asset tags: the server's inventory holds them (filled from the demo's server.toml).
    # [simulation] speed: the agent counts durations and integrated energy in the simulator's
    # seconds, so a charge that takes three simulated hours is three hours long, not three minutes.
    return (
        f"[cabinet]\nsite = \"{SITE}\"\nid = \"{cabinet.id}\"\nmodel = \"{cabinet.model}\"\n"
        f"[buses.main]\ntransport = \"tcp\"\nhost = \"{host}\"\nport = {port}\n"
        f"[mqtt]\nhost = \"127.0.0.1\"\nport = {broker_port}\nusername = \"{SITE}-{cabinet.id}\"\n"
        "keepalive_s = 10\n[polling]\ninterval_s = 1.0\ntelemetry_interval_s = 5.0\n"
        f"[simulation]\nspeed = {speed!r}\n")


def _demo_users(server_conf: Path) -> tuple[dict[str, str], str]:
    """Every user of ``USERS`` with a new password (printed in the banner), and an API token of the
    admin for the summary lines. Made in the server's user store as ``cabinet-server user add``
    does, but in this process: a Python started per user took up to 20 s on a busy machine. On a
    later run in the same workdir each user is made anew, so role and scope are this demo's."""
    from server.auth import Role, User, UserStore  # the demo runs the server anyway
    from server.config import load_server_settings, store_location
    from server.store import open_store

    # the store the server opens with this config (its [state] dir, or a [state] url given in
    # the environment, as the server reads it)
    engine = open_store(store_location(load_server_settings(server_conf)))
    store = UserStore(engine)
    try:
        now = datetime.now(UTC)
        passwords = {}
        for user in USERS:
            store.remove_user(user.name)
            passwords[user.name] = secrets.token_urlsafe(12)
            store.add_user(User(user.name, Role(user.role), user.municipality, user.school),
                           passwords[user.name], now)
        admin = next(user.name for user in USERS if user.role == Role.ADMIN)
        return passwords, store.create_token(admin, "demo summary", now)
    finally:
        engine.dispose()


def _school_day_note(now: datetime) -> list[str]:
    """Why "not returned" works today: the demo's calendar has school every day."""
    del now  # every day is a school day in the demo (demo_org.organisation_toml)
    return ["  Die Demo-Schule hat jeden Tag Schule (keine Wochenenden, keine Feiertage), damit jeder",
            "  Hinweis sofort wirkt (the demo school has school every day, so every hint works now)"]


def _api(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=2) as response:
        return dict(json.loads(response.read()))


def _fleet_summary(http: str, token: str) -> str:
    fleet = _api(f"{http}/api/fleet", token)
    alerts = _api(f"{http}/api/alerts?state=firing", token)  # not the pending: a door open 15 s
    states: Counter[str] = Counter()
    for cabinet in fleet.get("cabinets", []):
        for slot in cabinet.get("slots", []):
            states[slot.get("state", "?")] += 1
    parts = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
    cabinets, firing = len(fleet.get("cabinets", [])), len(alerts.get("alerts", []))
    return f"{cabinets} cabinets | slots: {parts} | alerts firing: {firing}"


def _banner(http: str, broker: str, passwords: dict[str, str], rows: list[Running],
            speed: float, logs: Path, now: datetime, token: str, config: Path) -> list[str]:
    """What the demo prints once everything runs; README.md "Two commands" shows it. ``token`` is
    the admin's API token of the summary lines: the curl line works as printed."""
    width = max(len(f"{u.name} / {passwords[u.name]}") for u in USERS) + 2
    lines = [
        "", "Ladewache-Demo läuft – Strg-C beendet alles (Ladewache demo is running, Ctrl-C stops "
        "everything)", "",
        f"  broker      {broker}",
        f"  server      {http}",
        f"              {http}/docs  API-Beschreibung, ohne Anmeldung (API docs, no log-in needed)",
        "  API         mit dem Token des Admins (with the admin's API token; more: "
        f"{Path(sys.executable).parent / 'cabinet-server'} user token NAME --config {config}):",
        f"              curl -H 'Authorization: Bearer {token}' {http}/api/fleet",
        "  time series keine (none): der Server hält nur Schrankzustand und Alarme (fleet state and "
        "alerts only)",
        f"  dashboard   {http}/  Anmeldung, für diese Demo angelegt (log-ins made for this demo):",
        *(f"    {f'{u.name} / {passwords[u.name]}':<{width}}{u.what_de} ({u.what_en})" for u in USERS),
        f"  {DISTRICT} › {MUNICIPALITY} › {SCHOOL} ({SITE}):",
    ]
    label_w = max(len(r.cabinet.label) for r in rows) + 2
    model_w = max(len(r.cabinet.model) for r in rows) + 2
    for r in rows:
        life = "Schultag (school day)" if r.cabinet.scenario == "school-day" else "ruhig (quiet)"
        lines.append(f"    {r.cabinet.label:<{label_w}}{r.cabinet.model:<{model_w}}{life:<23}"
                     f"modbus {r.modbus:<16} sim control {r.control}/state  agent pid {r.agent_pid}")
    by_id = {r.cabinet.id: r for r in rows}
    control = by_id[PRESENCE_CABINET.id].control
    room, out, broken = PRESENCE_CABINET.name, HINT_SLOTS["take_out"], HINT_SLOTS["broken"]
    lines += [
        "",
        f"  Ausprobieren (try) – jeder Alarm steht nach höchstens einer Minute unter {http}/alerts:",
        f"    iPad nicht zurückgegeben (ipad_not_returned): iPad aus {room}, Fach {out} nehmen – "
        "Alarm zur nächsten vollen Minute",
        f"      curl -X POST {control}/slots/{out}/remove",
        f"      zurückstecken (put it back): curl -X POST {control}/slots/{out}/insert",
        f"    iPad lädt nicht (ipad_not_charging): Ladegerät in {room}, Fach {broken} defekt – "
        f"Alarm nach {NOT_CHARGING_PENDING_S} s",
        f"      curl -X POST {control}/slots/{broken}/remove && "
        f"curl -d '{{\"broken\": true}}' {control}/slots/{broken}/insert",
        f"    Tür offen (door_open): Tür von {room} öffnen – Alarm nach {DOOR_PENDING_S} s, behoben "
        "beim Schließen",
        f"      curl -d '{{\"open\": true}}' {control}/door     schließen (close): "
        f"curl -d '{{\"open\": false}}' {control}/door",
        f"    Schrank offline (cabinet_offline): Agent von {OFFLINE_CABINET.name} beenden – "
        f"Alarm nach {OFFLINE_PENDING_S} s",
        f"      kill {by_id[OFFLINE_CABINET.id].agent_pid}",
        f"  Nur {room} hat Präsenzschalter. Die anderen Schränke messen nur Strom: ein volles iPad zieht",
        "  so wenig wie ein leeres Fach, dort sieht man es nicht gehen (ein ladendes schon).",
        f"  (Only {room} has presence switches; in the others a full iPad draws ~0 W like an empty slot "
        "and is not seen leaving.)",
        *_school_day_note(now),
        "",
        f"  simulated time runs {speed:g}x; logs in {logs}",
        "",
    ]
    return lines


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
        now = datetime.now(UTC)
        slot_counts = {c.id: load_cabinet_model(c.model).model.slots for c in CABINETS}
        server_conf = _write(workdir / "server.toml",
                             _server_toml(broker_port, http_port, slot_counts, now))
        passwords, token = _demo_users(server_conf)
        server = demo.start("server", [sys.executable, "-m", "server", "run", "--config", str(server_conf)],
                            "READY")
        http = server.ready.split("http=", 1)[1]
        rows = []
        for cabinet in CABINETS:
            sim = demo.start(f"sim-{cabinet.id}", [
                sys.executable, "-m", "simulators", "cabinet", "--model", cabinet.model,
                "--modbus-port", "0", "--control-port", "0", "--speed", str(speed),
                "--seed", str(cabinet.seed), "--scenario", cabinet.scenario,
                "--asset-prefix", cabinet.asset_prefix], "READY")
            fields = dict(part.split("=", 1) for part in sim.ready.split()[1:])
            agent_conf = _write(workdir / f"agent-{cabinet.id}.toml", _agent_toml(
                cabinet, slot_counts[cabinet.id], fields["modbus"], broker_port, speed))
            agent = demo.start(f"agent-{cabinet.id}", [sys.executable, "-m", "cabinet_agent", "run",
                                                       "--config", str(agent_conf)], None)
            rows.append(Running(cabinet, fields["modbus"], fields["control"], agent.proc.pid))
        print("\n".join(_banner(http, f"mqtt://127.0.0.1:{broker_port}  ({broker_kind})", passwords,
                                rows, speed, demo.logs, now, token, server_conf)), flush=True)
        reported: set[str] = set()
        while not stop.wait(15):
            for child in demo.children:
                if child.proc.poll() is not None and child.name not in reported:
                    reported.add(child.name)
                    print(f"! {child.name} beendet (exited) mit {child.proc.returncode}; "
                          f"Log: {child.log_path}")
            try:
                print(time.strftime("%H:%M:%S"), _fleet_summary(http, token), flush=True)
            except OSError as exc:
                print(f"server not answering: {exc}")
        print("\nstopping …")
        return 0
    finally:
        demo.stop_all()
        print("all stopped.")
