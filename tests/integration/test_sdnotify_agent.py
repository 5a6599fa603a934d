"""A real ``cabinet-agent run`` under a fake systemd: READY, watchdog pings, and no pings once
the poll loop stops making progress.

How the loop is made to hang, honestly: the simulator is SIGSTOPped while the agent waits for a
Modbus TCP answer with ``timeout_s = 30`` (the longest the config allows) and no retries. The
TCP connection stays open and nothing answers, so the poll cycle blocks for 30 s — far longer
than the 1 s watchdog period, which is exactly what systemd's watchdog must catch. (A simulator
that merely answers late is no hang: timeouts apply and the loop runs on. A device killed
through the control API only stops answering, with the same effect.) SIGCONT proves the pings
came back because the loop did, not because of some timer.
"""

from __future__ import annotations

import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import ManagedProcess, console_script
from tests.support.services import Broker

pytestmark = pytest.mark.integration

WATCHDOG_S = 1.0


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"ladewache-notify-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())  # an abstract socket, as systemd's may be
        yield sock, f"@{name}"


def _next(sock: socket.socket, timeout: float) -> bytes | None:
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return None


def test_ready_and_watchdog_pings_stop_while_the_poll_loop_hangs(
        tmp_path: Path, broker: Broker, notify_socket: tuple[socket.socket, str]) -> None:
    sock, address = notify_socket
    sim = ManagedProcess("sim", [console_script("cabinet-sim"), "cabinet", "--model", "ladewache-8",
                                 "--modbus-port", "0", "--control-port", "0", "--speed", "1",
                                 "--seed", "3", "--fill", "0"])
    agent: ManagedProcess | None = None
    try:
        ready = sim.wait_for_line(lambda line: line.startswith("READY"))
        fields = dict(part.split("=", 1) for part in ready.split()[1:])
        config = tmp_path / "agent.toml"
        config.write_text(
            '[cabinet]\nsite = "gs-wd"\nid = "schrank-1"\nmodel = "ladewache-8"\n'
            f'[buses.main]\ntransport = "tcp"\nhost = "127.0.0.1"\n'
            f'port = {fields["modbus"].rsplit(":", 1)[1]}\ntimeout_s = 30\nretries = 0\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
            "[polling]\ninterval_s = 0.1\ntelemetry_interval_s = 1\n")
        agent = ManagedProcess("agent", [console_script("cabinet-agent"), "run", "--config",
                                         str(config)],
                               env={"NOTIFY_SOCKET": address,
                                    "WATCHDOG_USEC": str(int(WATCHDOG_S * 1_000_000)),
                                    "XDG_STATE_HOME": str(tmp_path / "state")})
        first = _next(sock, 20)
        assert first is not None and first.startswith(b"READY=1\n"), (first, agent.output())
        pings = [_next(sock, 2 * WATCHDOG_S) for _ in range(3)]
        assert pings == [b"WATCHDOG=1"] * 3, agent.output()

        sim.signal(signal.SIGSTOP)
        # The cycle in flight may still finish and ping once or twice; then nothing, for longer
        # than the watchdog period systemd would allow.
        late = []
        while (message := _next(sock, 2 * WATCHDOG_S)) is not None:
            late.append(message)
            assert len(late) <= 3, f"pings go on while the poll loop is blocked: {late}"
        assert set(late) <= {b"WATCHDOG=1"}

        sim.signal(signal.SIGCONT)
        assert _next(sock, 35) == b"WATCHDOG=1", "pings did not resume with the loop"

        agent.stop()
        rest = []
        while (message := _next(sock, 5)) is not None:
            rest.append(message)
            if message.startswith(b"STOPPING=1"):
                break
        assert rest and rest[-1].startswith(b"STOPPING=1"), rest
    finally:
        sim.signal(signal.SIGCONT)
        if agent is not None:
            agent.stop()
        sim.stop()
