"""The agent's poll cycle over simulated Modbus RTU against the wire time, and its footprint.

    .venv/bin/python bench/poll_cycle.py [--baud 19200 9600 115200] [--cycles 60] [--window 30]

1. Poll cycle, at each baud rate: ``cabinet-sim cabinet --model ladewache-32 --rtu`` (a separate
   process) paces every reply by the wire time of its exchange at the baud rate (11-bit characters,
   t3.5 gaps, no turnaround); this process polls it back to back with the agent's own sources and
   poller, configured for 11-bit characters as well (8N2: a pty takes two stop bits, not parity),
   and compares the median cycle with the wire time of the same requests. Target at 19200 baud,
   the default and the target's rate: <= 1.05x.
2. Footprint: ``cabinet-agent run`` at one poll per second against the simulator at the first baud
   rate and a local Mosquitto, RSS and CPU over ``--window`` seconds, next to the bare import floor
   (a Python process that only imports paho, pymodbus and pydantic-settings). Target: <= 1.1x.
   The agent gets the environment its systemd unit gives it (the unit's ``Environment=`` lines,
   e.g. ``MALLOC_ARENA_MAX``); the floor is a plain Python process.

Prints both side by side, in Markdown, for ``docs/benchmarks.md``; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cabinet_agent.cabinet_model import load_cabinet_model  # noqa: E402
from cabinet_agent.config import AgentSettings  # noqa: E402
from cabinet_agent.poller import Poller  # noqa: E402
from cabinet_agent.sources import open_sources  # noqa: E402
from cabinet_agent.sources.modbus_device import ModbusDevice  # noqa: E402
from cabinet_agent.sources.modbus_rtu import rtu_frame_bytes  # noqa: E402
from cabinet_agent.sources.serial_port import rtu_wire_time_s  # noqa: E402
from tests.support.procs import ManagedProcess, console_script  # noqa: E402
from tests.support.services import start_mosquitto  # noqa: E402

MODEL = "ladewache-32"
BITS_PER_CHAR = 11  # what the simulator paces: 8E1, Modbus' standard framing
STOPBITS = 2  # the agent's side: 8N2, also 11 bits a character (a pty keeps no parity)
TARGET_BAUD, CYCLE_TARGET, RSS_TARGET = 19200, 1.05, 1.1
FLOOR_CODE = ("import paho.mqtt.client, pymodbus.client, pydantic_settings, time\n"
              "print('READY', flush=True)\ntime.sleep(3600)\n")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
UNIT = ROOT / "deploy" / "systemd" / "cabinet-agent.service"


def unit_environment(unit: Path = UNIT) -> dict[str, str]:
    """The ``Environment=`` assignments of the unit's [Service] section: the agent is measured as
    systemd starts it. (``EnvironmentFile=`` holds secrets only, none of them here.)"""
    env: dict[str, str] = {}
    section = ""
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and line.startswith("Environment="):
            for assignment in shlex.split(line.removeprefix("Environment=")):
                key, _, value = assignment.partition("=")
                env[key] = value
    return env


def _start_sim(workdir: Path, baud: int) -> tuple[ManagedProcess, Path]:
    sim = ManagedProcess("sim", [
        console_script("cabinet-sim"), "cabinet", "--model", MODEL, "--modbus-port", "0",
        "--control-port", "0", "--rtu", "--baud", str(baud), "--bits-per-char", str(BITS_PER_CHAR),
        "--turnaround-ms", "0", "--serial-dir", str(workdir / "dev")])
    ready = sim.wait_for_line(lambda line: line.startswith("READY"))
    fields = dict(part.split("=", 1) for part in ready.split()[1:])
    return sim, Path(fields["rtu"])


def _settings(link: Path, baud: int) -> AgentSettings:
    return AgentSettings.model_validate({
        "cabinet": {"site": "bench", "id": "poll-cycle", "model": MODEL},
        "buses": {"main": {"transport": "rtu", "port": str(link), "baudrate": baud,
                           "stopbits": STOPBITS}}})


async def _cycles(link: Path, baud: int, cycles: int) -> tuple[list[float], float, int]:
    settings = _settings(link, baud)
    cabinet = load_cabinet_model(MODEL)
    sources = open_sources(settings, cabinet)
    poller = Poller(cabinet, sources)
    wire = 0.0
    requests = 0
    for device in sources.devices:
        assert isinstance(device, ModbusDevice)
        for block in device.blocks:
            request, reply = rtu_frame_bytes(block)
            wire += rtu_wire_time_s(request, reply, baud, BITS_PER_CHAR)
            requests += 1
    durations = []
    try:
        for i in range(cycles + 5):
            started = time.perf_counter()
            reading = await poller.poll()
            if not all(d.ok for d in reading.devices):
                raise RuntimeError(f"a device failed: {reading.devices}")
            if i >= 5:  # the first cycles open the port
                durations.append(time.perf_counter() - started)
    finally:
        await poller.close()
    return durations, wire, requests


def _proc_stat(pid: int) -> tuple[float, int, int]:
    """CPU seconds (user + system), RSS kB, peak RSS kB of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return cpu, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


def _footprint(workdir: Path, link: Path, baud: int, window: float) -> dict[str, tuple[float, int, int]]:
    broker = start_mosquitto(workdir / "mosquitto")
    config = workdir / "agent.toml"
    config.write_text(
        f'[cabinet]\nsite = "bench"\nid = "poll-cycle"\nmodel = "{MODEL}"\n'
        f'[buses.main]\ntransport = "rtu"\nport = "{link}"\nbaudrate = {baud}\nstopbits = {STOPBITS}\n'
        f'[mqtt]\nport = {broker.port}\n[polling]\ninterval_s = 1.0\ntelemetry_interval_s = 10.0\n')
    agent = ManagedProcess("agent", [console_script("cabinet-agent"), "run", "--config", str(config)],
                           env=unit_environment())
    floor = ManagedProcess("floor", [sys.executable, "-c", FLOOR_CODE])
    try:
        agent.wait_for_line(lambda line: "adapter at" in line)
        floor.wait_for_line(lambda line: line == "READY")
        time.sleep(3)  # settle: the first telemetry, the MQTT handshake
        before = {name: _proc_stat(p.proc.pid) for name, p in (("agent", agent), ("floor", floor))}
        time.sleep(window)  # the measurement window itself
        after = {name: _proc_stat(p.proc.pid) for name, p in (("agent", agent), ("floor", floor))}
        if agent.proc.poll() is not None:
            raise RuntimeError(f"agent exited:\n{agent.output()}")
    finally:
        agent.stop()
        floor.stop()
        broker.process.stop()
    return {name: ((after[name][0] - before[name][0]) / window * 100, after[name][1], after[name][2])
            for name in after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baud", type=int, nargs="+", default=[TARGET_BAUD, 9600, 115200],
                        help="baud rates to measure the cycle at; the footprint runs at the first")
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--window", type=float, default=30.0, help="footprint window, seconds")
    args = parser.parse_args()
    cycles: dict[int, tuple[list[float], float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="ladewache-bench-") as tmp:
        for i, baud in enumerate(args.baud):
            workdir = Path(tmp) / str(baud)
            sim, link = _start_sim(workdir, baud)
            try:
                cycles[baud] = asyncio.run(_cycles(link, baud, args.cycles))
                if i == 0:
                    footprint = _footprint(workdir, link, baud, args.window)
            finally:
                sim.stop()
    (agent_cpu, agent_rss, agent_peak), (floor_cpu, floor_rss, floor_peak) = \
        footprint["agent"], footprint["floor"]
    cpu_model = next((line.split(":", 1)[1].strip() for line in
                      Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line), "?")
    print(f"# {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {cpu_model}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"# command: .venv/bin/python bench/poll_cycle.py --baud {' '.join(map(str, args.baud))} "
          f"--cycles {args.cycles} --window {args.window:g}")
    unit_env = " ".join(f"{k}={v}" for k, v in unit_environment().items()) or "none"
    print(f"# agent environment from {UNIT.relative_to(ROOT)}: {unit_env}\n")
    requests = next(iter(cycles.values()))[2]
    print(f"Poll cycle, {MODEL} over simulated RTU ({requests} requests, {args.cycles} cycles):\n")
    print("| baud | median cycle | p95 cycle | wire time | median / wire | target |")
    print("|---|---|---|---|---|---|")
    ok = True
    for baud, (durations, wire, _) in cycles.items():
        median = statistics.median(durations)
        p95 = statistics.quantiles(durations, n=20)[-1]
        target = f"<= {CYCLE_TARGET}x" if baud == TARGET_BAUD else ""
        ok &= baud != TARGET_BAUD or median / wire <= CYCLE_TARGET
        print(f"| {baud} | {median * 1000:.1f} ms | {p95 * 1000:.1f} ms | {wire * 1000:.1f} ms | "
              f"{median / wire:.3f}x | {target} |")
    print(f"\nFootprint at one poll per second ({args.baud[0]} baud, {args.window:g} s window):\n")
    print("| | agent | import floor | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| RSS | {agent_rss / 1024:.1f} MB | {floor_rss / 1024:.1f} MB | "
          f"{agent_rss / floor_rss:.3f}x | <= {RSS_TARGET}x |")
    print(f"| peak RSS | {agent_peak / 1024:.1f} MB | {floor_peak / 1024:.1f} MB | "
          f"{agent_peak / floor_peak:.3f}x | |")
    print(f"| CPU | {agent_cpu:.2f} % of a core | {floor_cpu:.2f} % | "
          f"+{agent_cpu - floor_cpu:.2f} points | |")
    ok &= agent_rss / floor_rss <= RSS_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
