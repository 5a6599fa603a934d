"""The shipped broker config (deploy/mosquitto) on a free port, with a CA made for the test."""

from __future__ import annotations

import getpass
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import trustme
from paho.mqtt.enums import CallbackAPIVersion

from server.cli import main as server_main

from .procs import ManagedProcess, find_binary, free_port, port_open, wait_until

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONF = ROOT / "deploy" / "mosquitto" / "ladewache.conf"
SHIPPED_DIR = "/etc/mosquitto/ladewache/"


@dataclass
class SecureBroker:
    port: int
    workdir: Path
    ca_file: Path
    process: ManagedProcess
    ca: trustme.CA

    @property
    def provision_args(self) -> list[str]:
        return ["--dir", str(self.workdir / "provision"), "--passwd-file", str(self.workdir / "passwd"),
                "--acl-file", str(self.workdir / "acl")]

    def provision(self, *args: str) -> int:
        return server_main(["provision", *args, *self.provision_args])

    def password(self, env_file: Path) -> str:
        for line in env_file.read_text().splitlines():
            if line.startswith("LADEWACHE_MQTT__PASSWORD="):
                return line.split("=", 1)[1]
        raise AssertionError(f"no password in {env_file}")

    def cabinet_dir(self, site: str, cabinet: str) -> Path:
        return self.workdir / "provision" / "cabinets" / site / cabinet

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads the password and ACL files."""
        self.process.signal(1)

    def client(self, client_id: str, user: str | None, password: str | None,
               tls: bool = True, **options: Any) -> mqtt.Client:
        """A paho client for this broker; ``options`` go to ``mqtt.Client`` (clean_session, …)."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, **options)
        if user is not None:
            client.username_pw_set(user, password)
        if tls:
            client.tls_set(ca_certs=str(self.ca_file), cert_reqs=ssl.CERT_REQUIRED)
        return client

    def stop(self) -> None:
        self.process.stop()


def template_config(port: int, workdir: Path) -> str:
    """The shipped file with its port and paths moved into ``workdir``; nothing else changed."""
    text = SHIPPED_CONF.read_text(encoding="utf-8")
    assert "listener 8883\n" in text and SHIPPED_DIR in text
    text = text.replace("listener 8883\n", f"listener {port} 127.0.0.1\n")
    text = text.replace(SHIPPED_DIR, f"{workdir}/")
    # What Debian's mosquitto.conf sets around the drop-in, for a throw-away broker:
    extra = "persistence false\nlog_dest stdout\nlog_type error\nlog_type warning\nlog_type notice\n"
    if os.geteuid() == 0:  # as root mosquitto would switch to user "mosquitto", who cannot read tmp
        extra += f"user {getpass.getuser()}\n"
    return text + "\n# test-only\n" + extra


def start_secure_broker(workdir: Path, cabinets: Sequence[tuple[str, str]] = (),
                        modbus_port: int = 502) -> SecureBroker:
    """Provision the collector and ``cabinets`` (the first with mosquitto_passwd when installed,
    the others with the built-in hash, so both formats are proven), then start mosquitto."""
    binary = find_binary("mosquitto")
    if binary is None:
        raise RuntimeError("mosquitto is not installed; `make test` installs it")
    workdir.mkdir(parents=True, exist_ok=True)
    tls = workdir / "tls"
    tls.mkdir()
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tls / "ca.crt"))
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    leaf.cert_chain_pems[0].write_to_path(str(tls / "server.crt"))
    leaf.private_key_pem.write_to_path(str(tls / "server.key"))
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(template_config(port, workdir), encoding="utf-8")
    broker = SecureBroker(port, workdir, tls / "ca.crt", None, ca)  # type: ignore[arg-type]
    # The files must exist before mosquitto starts: the collector's user creates both.
    assert broker.provision("server", "--hasher", "builtin") == 0
    for index, (site, cabinet) in enumerate(cabinets):
        assert broker.provision(
            "add", "--site", site, "--cabinet", cabinet, "--model", "ladewache-8",
            "--asset-tag", "1=ACL-0001", "--broker-host", "127.0.0.1", "--broker-port", str(port),
            "--ca-file", str(broker.ca_file), "--modbus-host", "127.0.0.1",
            "--modbus-port", str(modbus_port), "--hasher", "auto" if index == 0 else "builtin") == 0
    broker.process = ManagedProcess("mosquitto", [binary, "-c", str(config)])
    wait_until(lambda: port_open(port), 15, f"mosquitto (TLS) on port {port}")
    return broker
