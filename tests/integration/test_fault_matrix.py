"""The fault matrix: every event is stored exactly once, whatever breaks between cabinet and TSDB.

One system of real processes for the module — ``cabinet-sim cabinet --rtu``, ``cabinet-agent`` (on
the simulated RS-485 bus, its MQTT through ``tests/support/netproxy.py``), Mosquitto (persistence
on, as deployed), ``cabinet-server`` and VictoriaMetrics (``-dedup.minScrapeInterval=1ms``) — and
one scenario per test, in order; each breaks one thing while the test drives changes, repairs it
and waits until everything arrived.

"Every event the simulator produced": the test toggles the door through the simulator's control API
and injects faults (a dead slave, the USB adapter pulled); the agent logs each change it turns into
an ``event`` message (``cabinet_agent.service: <kind> <subject>: <old> -> <new>``). After every
scenario the multiset of logged changes of all agent processes so far must equal the server's event
log (table ``events`` of its store, keyed by cabinet, boot_id and seq) — nothing missing, nothing
twice — and VictoriaMetrics must hold exactly one ``event_seq`` sample per stored event. The fleet
view and the TSDB's last ``cabinet_door_open`` must show the simulator's door (no regression by
replays).

Figures go to ``test-artifacts/fault-matrix.json`` (copied into docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, String, cast, func, select

from server.store.schema_events import events
from tests.support.api_auth import admin_token, api_get
from tests.support.loss_count import kinds_lost
from tests.support.mqtt_tap import PublishTap
from tests.support.netproxy import NetProxy
from tests.support.procs import (
    ManagedProcess,
    console_script,
    find_binary,
    free_port,
    http_ok,
    port_open,
    wait_until,
)
from tests.support.store import store_at

pytestmark = [pytest.mark.integration, pytest.mark.store_per_module]

SITE, CABINET = "gs-matrix", "schrank-f"
POLL_S = 0.2
KEEPALIVE_S = 5
SETTLE_S = 40.0
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
_CHANGE = re.compile(r"cabinet_agent\.service: (\w+) (\S*): (.*) -> (.*)$")

Change = tuple[str, str, str, str]


def _post(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read() or b"{}"))


class Mosquitto:
    """Persistence on (the collector's session and its queued messages survive a restart)."""

    def __init__(self, workdir: Path) -> None:
        binary = find_binary("mosquitto")
        if binary is None:
            pytest.skip("mosquitto is not installed (make test installs it)")
        self.binary = binary
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        # Started as root, mosquitto would switch to its own user, who cannot write the session
        # store below pytest's private temporary directory.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n{user}"
            f"persistence_location {workdir}/\nmax_queued_messages 100000\nlog_dest stdout\n"
            "log_type error\nlog_type warning\n", encoding="utf-8")
        self.process: ManagedProcess | None = None
        self.start()

    def start(self) -> None:
        self.process = ManagedProcess("mosquitto", [self.binary, "-c", str(self.config)])
        wait_until(lambda: port_open(self.port), 15, "mosquitto listening")

    def stop(self) -> None:
        assert self.process is not None
        self.process.stop()
        wait_until(lambda: not port_open(self.port), 10, "mosquitto gone")


class Victoria:
    def __init__(self, workdir: Path) -> None:
        binary = find_binary("victoria-metrics")
        if binary is None:
            pytest.skip("victoria-metrics is not installed (make test installs it)")
        self.argv = [binary, f"-storageDataPath={workdir}", "-retentionPeriod=100y",
                     "-search.latencyOffset=0s", "-loggerLevel=WARN",
                     # Points are keyed by tags + timestamp: a replayed point must not count twice.
                     "-dedup.minScrapeInterval=1ms"]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: ManagedProcess | None = None
        self.start()

    def start(self) -> None:
        self.process = ManagedProcess("victoria-metrics",
                                      [*self.argv, f"-httpListenAddr=127.0.0.1:{self.port}"])
        wait_until(lambda: http_ok(f"{self.url}/health"), 30, "victoria-metrics /health")

    def stop(self) -> None:
        assert self.process is not None
        self.process.stop()

    def export(self, match: str) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=5):
            pass
        query = urllib.parse.urlencode({"match[]": match, "end": str(int(time.time()) + 86_400)})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=5) as response:
            return [json.loads(line) for line in response.read().splitlines() if line.strip()]


@dataclass
class Figures:
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(self) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "fault-matrix.json").write_text(json.dumps(self.scenarios, indent=2) + "\n",
                                                     encoding="utf-8")


@dataclass
class Matrix:
    root: Path
    broker: Mosquitto
    victoria: Victoria
    proxy: NetProxy
    sim: ManagedProcess
    control: str
    rtu_link: str
    tap: PublishTap
    figures: Figures = field(default_factory=Figures)
    agents: list[ManagedProcess] = field(default_factory=list)
    server: ManagedProcess | None = None
    http: str = ""
    token: str = ""
    door_open: bool = False
    store: Engine | None = None

    # -- processes -------------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.root / "server-state"

    def start_server(self) -> None:
        config = self.root / "server.toml"
        config.write_text(
            f'[mqtt]\nhost = "127.0.0.1"\nport = {self.broker.port}\nclient_id = "matrix-server"\n'
            "reconnect_min_s = 0.1\nreconnect_max_s = 0.5\n"
            f'[tsdb]\nurl = "{self.victoria.url}"\ntoken = "unused"\nflush_interval_s = 0.1\n'
            "timeout_s = 2\n"
            '[http]\nhost = "127.0.0.1"\nport = 0\n'
            f'[state]\ndir = "{self.state_dir}"\n', encoding="utf-8")
        self.token = admin_token(self.state_dir)
        self.server = ManagedProcess("server", [console_script("cabinet-server"), "run", "--config",
                                                str(config)])
        ready = self.server.wait_for_line(lambda line: line.startswith("READY"))
        # stdout and stderr share one pipe: a log line may end up behind READY before its newline.
        self.http = re.match(r"READY http=(http://[\d.]+:\d+)", ready)[1]  # type: ignore[index]
        wait_until(lambda: self.stats()["mqtt"]["connected"], 15, "collector subscribed")

    @property
    def agent(self) -> ManagedProcess:
        return self.agents[-1]

    def start_agent(self) -> None:
        config = self.root / "agent.toml"
        config.write_text(
            f'[cabinet]\nsite = "{SITE}"\nid = "{CABINET}"\nmodel = "ladewache-8"\n'
            f'[buses.main]\ntransport = "rtu"\nport = "{self.rtu_link}"\nbaudrate = 115200\n'
            "timeout_s = 0.05\nreopen_min_s = 0.2\nreopen_max_s = 0.5\n"
            f'[mqtt]\nhost = "127.0.0.1"\nport = {self.proxy.port}\nkeepalive_s = {KEEPALIVE_S}\n'
            "reconnect_min_s = 0.2\nreconnect_max_s = 1\n"
            f"[polling]\ninterval_s = {POLL_S}\ntelemetry_interval_s = 1\n"
            # this VM's kernel says unsynchronised; a school's Pi with NTP says synchronised, and
            # its points are keyed by their own time (what the counts below rely on)
            "[clock]\ntrust_system_clock = true\n"
            '[outbox]\npath = "outbox.sqlite"\nsync_interval_s = 1\nreplay_rate_per_s = 1000\n',
            encoding="utf-8")
        self.agents.append(ManagedProcess("agent", [console_script("cabinet-agent"), "run",
                                                    "--config", str(config)]))
        self.agent.wait_for_line(lambda line: "MQTT: connected" in line or "unreachable" in line, 20)

    def stop(self) -> None:
        for process in [*self.agents, self.server, self.sim]:
            if process is not None:
                process.stop()
        self.proxy.close()
        self.broker.stop()
        self.victoria.stop()
        if self.store is not None:
            self.store.dispose()

    # -- what each side says ------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        # every cabinet's integrity, also one with replays only (the default lists problems)
        return dict(api_get(f"{self.http}/api/stats?integrity=all", self.token))

    def cabinet(self) -> dict[str, Any] | None:
        for cabinet in api_get(f"{self.http}/api/fleet", self.token)["cabinets"]:
            if (cabinet["site"], cabinet["cabinet"]) == (SITE, CABINET):
                return dict(cabinet)
        return None

    def logged(self) -> Counter[Change]:
        """Every change any agent process turned into an event message."""
        changes: Counter[Change] = Counter()
        for agent in self.agents:
            for line in list(agent.lines):
                if match := _CHANGE.search(line):
                    changes[(match[1], match[2], match[3], match[4])] += 1
        return changes

    def _events(self, *columns: Any) -> list[tuple[Any, ...]]:
        """The cabinet's rows of the collector's event log, in its store (``store_at``: the file
        in its state dir, or the test's PostgreSQL), read while it runs."""
        if self.store is None:
            self.store = store_at(self.state_dir)
        query = select(*columns).where(events.c.site == SITE, events.c.cabinet == CABINET)
        with self.store.connect() as db:
            return [tuple(row) for row in db.execute(query)]

    def stored(self) -> list[tuple[str, int, str, str, str, str]]:
        e = events.c
        return self._events(e.boot_id, e.seq, e.kind,
                            func.coalesce(cast(e.slot, String), e.device, ""), e.old, e.new)

    def stored_rows_with_times(self) -> list[tuple[Any, ...]]:
        e = events.c
        return self._events(e.ts, e.received_at, e.boot_id, e.seq, e.kind, e.old, e.new, e.replayed)

    def stored_changes(self) -> Counter[Change]:
        return Counter((kind, subject, old, new) for _, _, kind, subject, old, new in self.stored())

    def tsdb_events(self) -> int:
        series = self.victoria.export(f'event_seq{{site="{SITE}",cabinet="{CABINET}"}}')
        return sum(len(s["timestamps"]) for s in series)

    def tsdb_door_open(self) -> float | None:
        series = self.victoria.export(f'cabinet_door_open{{site="{SITE}",cabinet="{CABINET}"}}')
        if not series:
            return None
        return float(max(zip(series[0]["timestamps"], series[0]["values"], strict=True))[1])

    def telemetry_and_states(self, name: str) -> dict[str, dict[str, Any]]:
        """Wait until every telemetry and state message the agent sent so far has its point in
        the TSDB (they keep coming: the newest may be on their way); the counts."""
        def kinds() -> dict[str, dict[str, Any]]:
            return kinds_lost(self.tap, self.victoria.export, SITE, CABINET)

        def complete() -> dict[str, dict[str, Any]] | None:
            counts = kinds()
            return counts if all(c.get("lost", 0) == 0 for c in counts.values()) else None

        try:
            return wait_until(complete, SETTLE_S,
                              f"{name}: a point for every telemetry and state message sent",
                              interval=0.3)
        except TimeoutError:
            pytest.fail(f"{name}: sent but not stored: {kinds()}")

    # -- driving -------------------------------------------------------------------------------------
    def _door_changes(self, to: str) -> int:
        return sum(n for (kind, _, _, new), n in self.logged().items()
                   if kind == "door_changed" and new == to)

    def toggle(self, count: int = 1) -> None:
        """Open or close the door; each time wait until the agent made it an event. Only a change
        to the new state counts: a just started agent's first ``unknown -> closed`` is none."""
        for _ in range(count):
            self.door_open = not self.door_open
            state = "open" if self.door_open else "closed"
            before = self._door_changes(state)
            _post(f"{self.control}/door", {"open": self.door_open})
            wait_until(lambda before=before, state=state: self._door_changes(state) > before, 10,
                       "the agent to see the door move")

    def settle(self, name: str, started: float, **extra: Any) -> dict[str, Any]:
        """Wait until every logged change is stored once, in the event log and the TSDB."""
        repaired = time.monotonic()

        def arrived() -> bool:
            return self.stored_changes() == self.logged()

        try:
            wait_until(arrived, SETTLE_S, f"{name}: every event in the server's event log")
        except TimeoutError:
            pytest.fail(f"{name}: logged {self.logged()} but stored {self.stored_changes()}\n"
                        f"server:\n{self.server.output()[-3000:] if self.server else ''}\n"
                        f"agent:\n{self.agent.output()[-3000:]}\n"
                        f"broker:\n{self.broker.process.output()[-2000:] if self.broker.process else ''}")
        stored_at = time.monotonic()
        rows = self.stored()
        assert len({(boot, seq) for boot, seq, *_ in rows}) == len(rows)
        wait_until(lambda: self.tsdb_events() == len(rows), SETTLE_S,
                   f"{name}: one event_seq sample per stored event")
        door = 1.0 if self.door_open else 0.0
        wait_until(lambda: (c := self.cabinet()) and c["door"] == ("open" if self.door_open
                                                                   else "closed"),
                   SETTLE_S, f"{name}: the fleet view shows the simulator's door")
        wait_until(lambda: self.tsdb_door_open() == door, SETTLE_S,
                   f"{name}: the TSDB's last door point is the simulator's door")
        points = self.tsdb_events()
        assert points == len(rows), (  # still exactly once after everything arrived
            f"{name}: {points} points for {len(rows)} events\n"
            + json.dumps(self.victoria.export(f'event_seq{{site="{SITE}",cabinet="{CABINET}"}}'))
            + "\n" + "\n".join(map(str, sorted(self.stored_rows_with_times()))))
        kinds = self.telemetry_and_states(name)
        stats = self.stats()
        integrity = stats["integrity"].get(f"{SITE}/{CABINET}", {})
        figures = {
            "events_logged_by_agents": sum(self.logged().values()),
            "events_stored": len(rows),
            "tsdb_event_points": self.tsdb_events(),
            "duplicates_suppressed_since_collector_start": stats["duplicates"],
            "replayed_since_collector_start": integrity.get("replayed"),
            "seq_gaps_now": integrity.get("seq_gaps"),
            "fault_s": round(repaired - started, 2),
            "repair_to_all_events_stored_s": round(stored_at - repaired, 2),
            "repair_to_tsdb_complete_s": round(time.monotonic() - repaired, 2),
            "agent_processes": len(self.agents),
            **{f"{kind}_{what}": n for kind, counts in kinds.items() for what, n in counts.items()},
            **extra,
        }
        self.figures.scenarios[name] = figures
        self.figures.write()
        return figures


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    root = tmp_path_factory.mktemp("fault-matrix")
    broker = Mosquitto(root / "mosquitto")
    victoria = Victoria(root / "victoria")
    sim = ManagedProcess("sim", [
        console_script("cabinet-sim"), "cabinet", "--model", "ladewache-8", "--modbus-port", "0",
        "--control-port", "0", "--rtu", "--baud", "115200", "--bits-per-char", "10",
        "--turnaround-ms", "0", "--serial-dir", str(root / "dev"), "--seed", "5", "--fill", "0"])
    fields = dict(p.split("=", 1) for p in sim.wait_for_line(lambda x: x.startswith("READY")).split()[1:])
    tap = PublishTap()  # what the agent sent, off the wire: the truth for telemetry and states
    proxy = NetProxy("127.0.0.1", broker.port, tap=tap.stream).__enter__()
    m = Matrix(root, broker, victoria, proxy, sim, fields["control"], fields["rtu"], tap)
    try:
        _post(f"{m.control}/door", {"open": False})
        m.start_server()
        m.start_agent()
        yield m
    finally:
        m.stop()


def test_baseline(matrix: Matrix) -> None:
    started = time.monotonic()
    matrix.toggle(2)
    matrix.settle("baseline", started)


def test_broker_restarted(matrix: Matrix) -> None:
    started = time.monotonic()
    matrix.toggle()
    matrix.broker.stop()
    matrix.toggle(2)
    matrix.broker.start()
    matrix.settle("broker_restarted", started)


def test_broker_down_for_a_long_outage(matrix: Matrix) -> None:
    """Time-compressed: 15 s at a 0.2 s poll is 75 polls and 15 heartbeats queued."""
    matrix.broker.stop()
    started = time.monotonic()
    while time.monotonic() - started < 15:
        matrix.toggle()
    matrix.broker.start()
    matrix.settle("broker_long_outage", started)


def test_collector_sigkilled_and_restarted(matrix: Matrix) -> None:
    started = time.monotonic()
    matrix.toggle()
    assert matrix.server is not None
    matrix.server.kill()
    matrix.toggle(3)
    matrix.start_server()
    matrix.settle("collector_sigkill", started)


def test_tsdb_down_across_a_collector_restart(matrix: Matrix) -> None:
    started = time.monotonic()
    matrix.victoria.stop()
    matrix.toggle(2)
    assert matrix.server is not None
    wait_until(lambda: matrix.stats()["tsdb"]["health"] == "failing", 15, "the TSDB seen failing")
    matrix.server.stop()  # its journal keeps what the TSDB has not taken
    matrix.start_server()
    matrix.toggle(2)
    matrix.victoria.start()
    matrix.settle("tsdb_down", started)


def test_agent_sigkilled_with_a_full_outbox(matrix: Matrix) -> None:
    started = time.monotonic()
    matrix.proxy.cut(reset=True)
    matrix.toggle(3)  # into the outbox: the broker is unreachable
    matrix.agent.kill()  # right after the last write
    matrix.proxy.restore()
    matrix.start_agent()  # same outbox file: the old boot's events are replayed
    matrix.toggle()
    figures = matrix.settle("agent_sigkill", started)
    assert figures["agent_processes"] >= 2


def test_network_cut_between_agent_and_broker(matrix: Matrix) -> None:
    started = time.monotonic()
    matrix.proxy.cut()  # a black hole: only the keepalive tells
    matrix.toggle(3)
    wait_until(lambda: (c := matrix.cabinet()) and c["status"] == "offline",
               KEEPALIVE_S * 1.5 + 5, "the broker's Last Will for the cut agent")
    matrix.toggle()
    matrix.proxy.restore()
    matrix.settle("network_cut", started)


def test_usb_adapter_gone_and_back(matrix: Matrix) -> None:
    started = time.monotonic()
    _post(f"{matrix.control}/serial/main/unplug")
    wait_until(lambda: any(k == "device_fault" for k, *_ in matrix.logged()), 10,
               "device faults when the adapter is gone")
    _post(f"{matrix.control}/serial/main/replug")
    wait_until(lambda: any(k == "device_recovered" for k, *_ in matrix.logged()), 15,
               "devices back after the replug")
    matrix.toggle(2)
    matrix.settle("usb_unplugged", started)


def test_one_slave_dead(matrix: Matrix) -> None:
    started = time.monotonic()
    faults = sum(n for (k, *_), n in matrix.logged().items() if k == "device_fault")
    _post(f"{matrix.control}/devices/climate/fault", {"mode": "dead"})
    wait_until(lambda: sum(n for (k, *_), n in matrix.logged().items() if k == "device_fault")
               > faults, 10, "the climate sensor's fault")
    matrix.toggle(2)  # the door (another slave on the same bus) still moves in time
    _post(f"{matrix.control}/devices/climate/fault", {"mode": "none"})
    matrix.settle("one_slave_dead", started)
