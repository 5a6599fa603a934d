"""The provisioned agent config, unchanged, connects over TLS and publishes; agent and server
log at DEBUG and no password or token reaches their output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_broker_acl import Session
from tests.support.procs import ManagedProcess, console_script
from tests.support.secure_broker import SecureBroker, start_secure_broker
from tests.support.services import VictoriaMetrics

pytestmark = pytest.mark.integration

CAB = ("gs-tls", "schrank-1")
PREFIX = f"ladewache/v1/{CAB[0]}/{CAB[1]}"
TSDB_TOKEN = "tsdb-token-Zq7xW2"  # a token the server is given and must never print


def _start_sim() -> tuple[ManagedProcess, int]:
    sim = ManagedProcess("sim", [console_script("cabinet-sim"), "cabinet", "--model", "ladewache-8",
                                 "--modbus-port", "0", "--control-port", "0", "--speed", "1",
                                 "--seed", "5", "--fill", "1"])
    ready = sim.wait_for_line(lambda line: line.startswith("READY"))
    fields = dict(part.split("=", 1) for part in ready.split()[1:])
    return sim, int(fields["modbus"].rsplit(":", 1)[1])


def test_provisioned_agent_publishes_over_tls_and_no_secret_is_logged(
        tmp_path: Path, victoria: VictoriaMetrics) -> None:
    sim, modbus_port = _start_sim()
    broker: SecureBroker | None = None
    processes: list[ManagedProcess] = [sim]
    try:
        broker = start_secure_broker(tmp_path / "broker", cabinets=[CAB], modbus_port=modbus_port)
        folder = broker.cabinet_dir(*CAB)
        agent_password = broker.password(folder / "agent.env")
        server_password = broker.password(broker.workdir / "provision" / "server.env")
        watcher = Session(broker, "tls-watcher", "ladewache-server", server_password)
        watcher.subscribe(f"{PREFIX}/#")

        agent = ManagedProcess(
            "agent", [console_script("cabinet-agent"), "--log-level", "DEBUG", "run",
                      "--config", str(folder / "agent.toml")],
            env={"LADEWACHE_MQTT__PASSWORD": agent_password,
                 "XDG_STATE_HOME": str(tmp_path / "state")})
        processes.append(agent)
        birth = None
        while birth is None:
            message = watcher.messages.get(timeout=20)
            if message.topic == f"{PREFIX}/birth":
                birth = json.loads(message.payload)
        assert birth["cabinet_model"] == "ladewache-8"
        assert birth["slots"][0].get("asset_tag") is None  # tags live in the server's inventory
        while watcher.messages.get(timeout=10).topic != f"{PREFIX}/telemetry":
            pass
        # Gone before the server logs in as the same user: the broker keys sessions by user name.
        watcher.close()

        server_conf = tmp_path / "server.toml"
        server_conf.write_text(
            'log_level = "DEBUG"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nusername = "ladewache-server"\n'
            f'tls = true\nca_file = "{broker.ca_file}"\nclient_id = "tls-server"\n'
            f'[tsdb]\nurl = "{victoria.url}"\ntoken = "{TSDB_TOKEN}"\n'
            '[http]\nhost = "127.0.0.1"\nport = 0\n')
        server = ManagedProcess("server", [console_script("cabinet-server"), "run", "--config",
                                           str(server_conf)],
                                env={"LADEWACHE_MQTT__PASSWORD": server_password})
        processes.append(server)
        server.wait_for_line(lambda line: "subscribed to" in line)
    finally:
        for process in reversed(processes):
            process.stop()
        if broker is not None:
            broker.stop()
    for process in processes[1:]:
        output = process.output()
        assert "DEBUG" in output, f"{process.name} did not log at DEBUG"
        for secret in (agent_password, server_password, TSDB_TOKEN):
            assert secret not in output, f"{process.name} logged a secret"
    assert agent_password not in broker.process.output()
