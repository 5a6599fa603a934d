"""Mosquitto and VictoriaMetrics on free loopback ports, for one test session or one test."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .procs import ManagedProcess, find_binary, free_port, http_ok, port_open, wait_until


@dataclass
class Broker:
    host: str
    port: int
    process: ManagedProcess
    config: Path

    def restart(self) -> None:
        self.process.stop()
        self.process = _start_mosquitto_process(self.config, self.port)


def _start_mosquitto_process(config: Path, port: int) -> ManagedProcess:
    binary = find_binary("mosquitto")
    if binary is None:
        raise RuntimeError("mosquitto is not installed; `make test` installs it (apt-get install mosquitto)")
    process = ManagedProcess("mosquitto", [binary, "-c", str(config)])
    wait_until(lambda: port_open(port), 15, f"mosquitto on port {port}")
    return process


def start_mosquitto(workdir: Path) -> Broker:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "max_queued_messages 100000\n"
        "log_dest stderr\n"  # unbuffered: a test can wait for a line

        "log_type error\nlog_type warning\nlog_type notice\n",
        encoding="utf-8",
    )
    return Broker("127.0.0.1", port, _start_mosquitto_process(config, port), config)


@dataclass
class VictoriaMetrics:
    url: str
    process: ManagedProcess

    def flush(self) -> None:
        """Make just-written points searchable (VictoriaMetrics buffers them for ~1 s)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=5):
            pass

    def query(self, promql: str) -> list[dict]:
        """Instant query; returns the ``result`` list of the Prometheus API answer."""
        self.flush()
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def export(self, match: str) -> list[dict]:
        """Every raw sample of the series matching ``match`` (one JSON line per series)."""
        self.flush()
        url = f"{self.url}/api/v1/export?" + urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(url, timeout=5) as response:
            return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def start_victoria_metrics(workdir: Path) -> VictoriaMetrics:
    binary = find_binary("victoria-metrics")
    if binary is None:
        raise RuntimeError("victoria-metrics is not installed; `make test` installs it "
                           "(apt-get install victoria-metrics)")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess("victoria-metrics", [
        binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={workdir}",
        "-retentionPeriod=100y", "-search.latencyOffset=0s", "-loggerLevel=WARN",
    ])
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/health"), 30, "victoria-metrics /health")
    return VictoriaMetrics(url, process)
