"""How many full agents (with their simulated cabinets) this machine holds: ``cabinet-sim fleet
--mode agents`` at N cabinets, against what arrives at the broker.

    .venv/bin/python bench/fleet_agents.py                     # 138, 276, 414 cabinets, 30 s each

Each step runs the fleet (district mix of 8/16/32 slots, no incidents, poll every 1 s, telemetry
every 10 s, 2 worker processes) against Mosquitto; a subscriber records, over the window after
every agent is online, each cabinet's telemetry arrivals and the ``poll_ms`` they carry (the
agent's last poll cycle). An agent that keeps up sends telemetry every 10-11 s (the first poll
tick after 10 s) with poll cycles of a few ms; the CPU of the worker processes is what each agent
costs, its cabinet's simulation and Modbus server included (they share the processes).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from fleet_support import Services, console_script, cpu_seconds, load, machine, percentile
from paho.mqtt.enums import CallbackAPIVersion

TELEMETRY_S = 10.0


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _step(services: Services, cabinets: int, window: float) -> dict[str, float]:
    arrivals: dict[str, list[float]] = defaultdict(list)
    poll_ms: list[float] = []
    counting = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"count-{cabinets}")

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        if counting.is_set():
            arrivals[message.topic].append(time.monotonic())
            poll_ms.append(float(json.loads(message.payload)["poll_ms"] or 0.0))

    sub.on_message = on_message
    sub.connect("127.0.0.1", services.broker_port)
    sub.subscribe("ladewache/v1/+/+/telemetry", qos=0)
    sub.loop_start()
    fleet = services.process(f"fleet-{cabinets}", [
        console_script("cabinet-sim"), "fleet", "--mode", "agents", "--cabinets", str(cabinets),
        "--broker-port", str(services.broker_port), "--no-incidents", "--processes", "2",
        "--telemetry-s", str(TELEMETRY_S), "--progress-s", "1", "--site-prefix", f"ag{cabinets}"])
    fleet.wait_for_line(lambda line: line.startswith("READY"), 120)
    # Measured anyway when not all come online: how many are heard says how far it got.
    with contextlib.suppress(TimeoutError):
        fleet.wait_for_line(lambda line: f"agents online {cabinets}/{cabinets}" in line, 90)
    time.sleep(TELEMETRY_S)  # every agent past its first telemetry
    workers = _children(fleet.proc.pid)
    cpu0 = sum(cpu_seconds(p) for p in workers)
    counting.set()
    t0 = time.monotonic()
    time.sleep(window)
    counting.clear()
    elapsed = time.monotonic() - t0
    cpu = (sum(cpu_seconds(p) for p in workers) - cpu0) / elapsed
    sub.loop_stop()
    sub.disconnect()
    fleet.stop(60)
    gaps = [b - a for times in arrivals.values() for a, b in itertools.pairwise(times)]
    return {"arrived": sum(map(len, arrivals.values())), "heard": len(arrivals), "cpu": cpu,
            "gap_p50": percentile(gaps, 50), "gap_max": max(gaps, default=float("nan")),
            "poll_p50": percentile(poll_ms, 50), "poll_p99": percentile(poll_ms, 99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[138, 276, 414])
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load {load()}")
    print("\n| agents + cabinets | agents heard | telemetry interval p50 / max | poll cycle p50 / p99 "
          "| worker CPU | CPU per agent |")
    print("|---|---|---|---|---|---|")
    with Services("ladewache-agents-") as services:
        for cabinets in args.steps:
            r = _step(services, cabinets, args.window)
            print(f"| {cabinets} | {r['heard']}/{cabinets} | {r['gap_p50']:.1f} s / {r['gap_max']:.1f} s | "
                  f"{r['poll_p50']:.0f} ms / {r['poll_p99']:.0f} ms | {r['cpu']:.2f} cores | "
                  f"{r['cpu'] / cabinets * 100:.2f} % of a core |", flush=True)
    print(f"load average after: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
