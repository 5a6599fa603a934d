"""What the fleet benchmarks share: a broker that queues without limit, VictoriaMetrics, the
collector, and reading their counters. Everything on free loopback ports, stopped by the caller
(``Services`` is a context manager)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.procs import (  # noqa: E402
    ManagedProcess,
    console_script,
    find_binary,
    free_port,
    port_open,
    wait_until,
)
from tests.support.services import VictoriaMetrics, start_victoria_metrics  # noqa: E402

__all__ = ["Services", "cpu_seconds", "get_json", "load", "machine", "percentile", "py_spy",
           "spy_summary", "vm_count"]


def machine() -> str:
    return (f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
            f"Linux {platform.release()}, Python {platform.python_version()}")


def load() -> str:
    """The 1-minute load average: other work on the machine shows here."""
    return Path("/proc/loadavg").read_text().split()[0]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get_json(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def vm_count(vm: VictoriaMetrics, promql: str) -> float:
    """A scalar PromQL result (0 when empty), after making fresh points searchable."""
    vm.flush()
    url = f"{vm.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    result = get_json(url)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


class Services:
    """Mosquitto (unlimited queues) and VictoriaMetrics in a temporary directory."""

    def __init__(self, prefix: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.dir = Path(self._tmp.name)
        self._stack = contextlib.ExitStack()
        self.broker_port = 0
        self.vm: VictoriaMetrics | None = None

    def __enter__(self) -> Services:
        self._stack.callback(self._tmp.cleanup)
        binary = find_binary("mosquitto")
        if binary is None:
            raise SystemExit("mosquitto is not installed (make system-deps)")
        self.broker_port = free_port()
        conf = self.dir / "mosquitto.conf"
        # A stopped or slow subscriber must not lose anything while the benchmark runs.
        conf.write_text(f"listener {self.broker_port} 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\nmax_queued_messages 0\nmax_inflight_messages 20\n"
                        "log_dest stderr\nlog_type error\n", encoding="utf-8")
        broker = ManagedProcess("mosquitto", [binary, "-c", str(conf)])
        self._stack.callback(broker.stop)
        self.broker = broker
        wait_until(lambda: port_open(self.broker_port), 15, "mosquitto")
        self.vm = start_victoria_metrics(self.dir / "vm")
        self._stack.callback(self.vm.process.stop)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()

    def start_server(self, name: str, extra: str = "", keepalive: int = 120,
                     client_id: str = "bench-collector") -> tuple[ManagedProcess, str]:
        """``cabinet-server`` with its defaults, writing to this VictoriaMetrics."""
        assert self.vm is not None
        conf = self.dir / f"{name}.toml"
        conf.write_text(
            f'log_level = "WARNING"\n[mqtt]\nhost = "127.0.0.1"\nport = {self.broker_port}\n'
            f'client_id = "{client_id}"\nkeepalive = {keepalive}\n'
            f'[tsdb]\nurl = "{self.vm.url}"\n[http]\nhost = "127.0.0.1"\nport = 0\nauth = false\n'
            f'{extra}',
            encoding="utf-8")
        server = ManagedProcess(name, [console_script("cabinet-server"), "run", "--config", str(conf)])
        self._stack.callback(server.stop)
        http = server.wait_for_line(lambda line: line.startswith("READY"), 60).split("http=", 1)[1]
        wait_until(lambda: get_json(f"{http}/api/stats")["mqtt"]["connected"], 30,
                   "collector subscribed")
        return server, http

    def process(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv)
        self._stack.callback(proc.stop)
        return proc


def py_spy(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    """Sample ``pid`` with py-spy (when installed) into collapsed stacks, per thread."""
    binary = Path(sys.executable).parent / "py-spy"
    if not binary.exists():
        print("(py-spy not installed: pip install py-spy for a profile of the running collector)")
        return None
    return subprocess.Popen([str(binary), "record", "--pid", str(pid), "--duration", str(seconds),
                             "--rate", "200", "--format", "raw", "--threads", "--nonblocking",
                             "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


_GENERIC = ("threading.py", "asyncio/", "server/cli.py", "cabinet-server", "concurrent/",
            "anyio/", "starlette/", "fastapi/", "uvicorn/")


def _frame(frame: str) -> tuple[str, str]:
    """(function, file relative to site-packages or the repository) of one py-spy frame."""
    where = frame.split("(")[-1].rstrip(")")
    return frame.split(" (")[0], where.split("/site-packages/")[-1].split(f"{ROOT}/")[-1].split(":")[0]


def spy_summary(path: Path, top: int = 25, per_thread: int = 8) -> str:
    """Samples per thread, the functions with the most inclusive samples (over all threads and
    per busy thread), and those with the most samples of their own (self time)."""
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    by_thread: dict[str, Counter[str]] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        threads[frames[0]] += count
        names = set()
        for frame in frames[1:]:
            name, short = _frame(frame)
            if not short.startswith(_GENERIC):
                names.add(f"{name} ({short})")
        if len(frames) > 1:
            name, short = _frame(frames[-1])
            own[f"{name} ({short})"] += count
        for name in names:
            inclusive[name] += count
        by_thread.setdefault(frames[0], Counter()).update(dict.fromkeys(names, count))
    lines = [f"py-spy: {total} samples"]
    for name, n in threads.most_common(6):
        lines.append(f"  thread {name}: {n / total:.0%}")
        if n / total >= 0.05:
            lines += [f"      {m / total:5.0%}  {f}" for f, m in by_thread[name].most_common(per_thread)]
    lines += ["  inclusive, share of all samples:"]
    lines += [f"    {n / total:5.0%}  {name}" for name, n in inclusive.most_common(top)]
    lines += ["  self (own samples), share of all samples:"]
    lines += [f"    {n / total:5.0%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def pause(proc: ManagedProcess) -> None:
    proc.signal(signal.SIGSTOP)


def resume(proc: ManagedProcess) -> float:
    """SIGCONT; returns the wall-clock time it was sent."""
    now = time.time()
    proc.signal(signal.SIGCONT)
    return now
