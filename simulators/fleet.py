"""``cabinet-sim fleet``: a district (or a country) of simulated cabinets on one machine.

    cabinet-sim fleet --broker-port 1883                       # 138 cabinets, 2,400 iPads, agents
    cabinet-sim fleet --cabinets 80000 --slots 32 --mode light --telemetry-s 60

Two modes. ``agents``: every cabinet is a ``CabinetSim`` behind its own Modbus TCP server, polled
by a real ``cabinet_agent`` Agent with its own MQTT connection, spread over ``--processes``
worker processes (``fleet_agents``). ``light``: pre-encoded protocol messages from one connection
(``fleet_light``), for fleets beyond what full agents on this machine hold: a load generator
with the exact wire format, without slot physics, scenario or incidents (``--speed`` and
``--no-incidents`` apply to ``agents`` only). ``auto`` picks agents
up to ``--max-agents`` cabinets (docs/benchmarks.md says why 150).

Prints ``READY mode=… cabinets=… slots=…`` once running, then a progress line every
``--progress-s``; SIGTERM/SIGINT (or ``--duration``) stops everything and exits 0.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import signal
import sys
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from .fleet_agents import AgentOptions, ShardReport, run_shard
from .fleet_light import LightFleet, LightOptions, LightStats
from .fleet_plan import CabinetPlan, plan_fleet

__all__ = ["add_fleet_parser", "run_fleet"]

MAX_AGENTS = 150  # 138 agents held, 276 did not: docs/benchmarks.md (bench/fleet_agents.py)
SHUTDOWN_S = 30.0


def add_fleet_parser(commands: Any, positive: Any, start: Any) -> None:
    p = commands.add_parser("fleet", help="many cabinets: full agents, or lightweight publishers")
    p.add_argument("--cabinets", type=int, default=138, help="how many cabinets (default 138)")
    p.add_argument("--slots", type=int, choices=[8, 16, 32], default=None,
                   help="slots per cabinet (default: the district mix of 8/16/32, 2,400 iPads "
                        "in 138 cabinets)")
    p.add_argument("--mode", choices=["auto", "agents", "light"], default="auto",
                   help="auto: full agents up to --max-agents cabinets, else light")
    p.add_argument("--max-agents", type=int, default=MAX_AGENTS)
    p.add_argument("--processes", type=int, default=2, help="worker processes for full agents")
    p.add_argument("--broker-host", default="127.0.0.1")
    p.add_argument("--broker-port", type=int, default=1883)
    p.add_argument("--speed", type=positive, default=60.0, help="simulated seconds per real second")
    p.add_argument("--start", type=start, default=None,
                   help="simulated start, ISO 8601 (default: 07:40 today or next weekday)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-incidents", action="store_true",
                   help="no faulty iPads, power loss, dead sensors, open doors, forgotten iPads")
    p.add_argument("--poll-s", type=positive, default=1.0, help="agents poll this often")
    p.add_argument("--telemetry-s", type=positive, default=None,
                   help="telemetry (heartbeat) interval; default 10 (agents) / 60 (light)")
    p.add_argument("--events-per-hour", type=float, default=6.0,
                   help="light: slot changes per cabinet and hour (each an event + a state)")
    p.add_argument("--births", choices=["full", "minimal", "none"], default="full",
                   help="light: at start each cabinet sends status, birth and state (full), "
                        "status and birth (minimal), or nothing")
    p.add_argument("--probes", type=int, default=0,
                   help="light: extra cabinets in site 'lag-probe' sending telemetry every "
                        "--probe-interval-s, for measuring ingest lag")
    p.add_argument("--probe-interval-s", type=positive, default=1.0)
    p.add_argument("--telemetry-qos", type=int, choices=[0, 1], default=None,
                   help="light mode: telemetry at this QoS instead of the protocol's (1); 0 is "
                        "what agents before issue 21 sent")
    p.add_argument("--site-prefix", default="gs")
    p.add_argument("--duration", type=positive, default=None, help="stop after this many seconds")
    p.add_argument("--progress-s", type=positive, default=5.0)
    p.set_defaults(run=run_fleet)


def run_fleet(args: argparse.Namespace) -> int:
    try:
        plans = plan_fleet(args.cabinets, args.slots, seed=args.seed,
                           incidents=not args.no_incidents, site_prefix=args.site_prefix)
    except ValueError as exc:
        print(f"cabinet-sim fleet: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.duration is not None:
        threading.Timer(args.duration, stop.set).start()
    mode = args.mode
    if mode == "auto":
        mode = "agents" if len(plans) <= args.max_agents else "light"
    if mode == "agents":
        return _run_agents(plans, args, stop)
    return _run_light(plans, args, stop)


def _line(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def _run_light(plans: list[CabinetPlan], args: argparse.Namespace, stop: threading.Event) -> int:
    probes = plan_fleet(args.probes, args.slots or 32, seed=args.seed + 1, incidents=False,
                        site_prefix="lag-probe") if args.probes else []
    options = LightOptions(args.broker_host, args.broker_port,
                           telemetry_s=args.telemetry_s or 60.0,
                           events_per_hour=args.events_per_hour, births=args.births,
                           probe_interval_s=args.probe_interval_s,
                           telemetry_qos=args.telemetry_qos)
    fleet = LightFleet(plans, options, probes, seed=args.seed)
    print(f"READY mode=light cabinets={len(plans)} slots={sum(p.slots for p in plans)} "
          f"probes={len(probes)}", flush=True)

    def progress(s: LightStats) -> None:
        _line(f"published {s.messages} messages: telemetry {s.telemetry}, changes {s.events}, "
              f"retained {s.retained}, probe {s.probes}")

    stats = fleet.run(stop, progress, args.progress_s)
    progress(stats)
    return 0


def _run_agents(plans: list[CabinetPlan], args: argparse.Namespace, stop: threading.Event) -> int:
    start = args.start or _next_school_morning(datetime.now())
    options = AgentOptions(args.broker_host, args.broker_port, start=start, speed=args.speed,
                           poll_s=args.poll_s, telemetry_s=args.telemetry_s or 10.0)
    ctx = multiprocessing.get_context("spawn")
    shard_stop = ctx.Event()
    reports: Any = ctx.Queue()
    n = max(1, min(args.processes, len(plans)))
    workers = [ctx.Process(target=run_shard, name=f"fleet-shard-{i}",
                           args=(i, plans[i::n], options, shard_stop, reports,
                                 args.log_level))
               for i in range(n)]
    for worker in workers:
        worker.start()
    latest: dict[int, ShardReport] = {}
    ready = False
    next_progress = time.monotonic()
    try:
        while not stop.is_set():
            try:
                report: ShardReport = reports.get(timeout=0.2)
                latest[report.shard] = report
            except queue.Empty:
                pass
            if any(not w.is_alive() for w in workers):
                print("cabinet-sim fleet: a worker process died", file=sys.stderr)
                return 1
            if not ready and len(latest) == n:
                ready = True
                print(f"READY mode=agents cabinets={len(plans)} "
                      f"slots={sum(p.slots for p in plans)} processes={n}", flush=True)
            if ready and time.monotonic() >= next_progress:
                _line(_summary(list(latest.values())))
                next_progress = time.monotonic() + args.progress_s
        return 0
    finally:
        shard_stop.set()
        deadline = time.monotonic() + SHUTDOWN_S
        for worker in workers:
            worker.join(max(0.1, deadline - time.monotonic()))
            if worker.is_alive():
                worker.terminate()
                worker.join(5)


def _next_school_morning(now: datetime) -> datetime:
    """07:40 today, or on the next weekday: the scenario has no school on weekends."""
    morning = now.replace(hour=7, minute=40, second=0, microsecond=0)
    while morning.weekday() >= 5:
        morning += timedelta(days=1)
    return morning


def _summary(reports: list[ShardReport]) -> str:
    cabinets = sum(r.cabinets for r in reports)
    online = sum(r.online for r in reports)
    slots: dict[str, int] = {}
    for r in reports:
        for key, value in r.slots.items():
            slots[key] = slots.get(key, 0) + value
    sim_time = reports[0].sim_time if reports else "?"
    return (f"sim {sim_time} | agents online {online}/{cabinets} | iPads in {slots.get('present', 0)}"
            f" (charging {slots.get('charging', 0)}), empty slots {slots.get('empty', 0)} | "
            f"doors open {sum(r.doors_open for r in reports)}, "
            f"mains off {sum(r.mains_off for r in reports)}")
