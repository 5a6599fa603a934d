"""Fleet throughput with one collector and with two (issue 19), side by side in one run.

    .venv/bin/python bench/collectors.py                 # 30,000 messages
    .venv/bin/python bench/collectors.py --messages 60000

Method (the drain of a backlog, as bench/ingest_ceiling.py): Mosquitto with unlimited queues,
VictoriaMetrics and a PostgreSQL start on free loopback ports. Three ``cabinet-server`` processes
subscribe and are frozen with SIGSTOP: one alone (its own database: the single collector) and a
pair sharing one database with ``[cluster]`` nodes a and b (docs/deploy.md 6b: each its own
persistent session, so each gets every message; one leads). One publisher sends the stream of
bench/ingest_ceiling.py (1,000 cabinets of the district mix). The single collector is resumed and
its drain timed (every message accepted, its TSDB buffer empty); then both of the pair at once,
until both have drained. Reported: the fleet's messages per second (the backlog over the time
until it is handled: by the one, by both) and each process's CPU per message.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from fleet_support import Services, cpu_seconds, get_json, load, machine, pause, resume, wait_until
from ingest_ceiling import _publish, _stream

from tests.support.postgres import start_postgres
from tests.support.procs import ManagedProcess


def _drain(servers: list[tuple[ManagedProcess, str]], n: int, timeout: float) -> tuple[float, list[float]]:
    """Resume the servers together; (seconds until every one has drained, each one's CPU s)."""
    cpu = [cpu_seconds(p.proc.pid) for p, _ in servers]
    started = min(resume(p) for p, _ in servers)

    def drained(http: str) -> bool:
        stats = get_json(f"{http}/api/stats")
        return stats["accepted"] + sum(stats["rejected"].values()) + stats["duplicates"] >= n \
            and stats["tsdb"]["buffered"] == 0

    for _, http in servers:
        wait_until(lambda http=http: drained(http), timeout, f"{http} drained", interval=0.2)
    took = time.time() - started
    return took, [cpu_seconds(p.proc.pid) - c for (p, _), c in zip(servers, cpu, strict=True)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=30_000)
    args = parser.parse_args()
    n = args.messages
    stream = _stream(n)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load {load()}")
    postgres = start_postgres()
    try:
        with Services("ladewache-collectors-") as services:
            state = f'[state]\ndir = "{services.dir}/%s"\nurl = "%s"\n'
            solo = services.start_server("solo", extra=state % ("solo", postgres.new_database()),
                                         client_id="bench-solo")
            shared = postgres.new_database()
            pair = [services.start_server(
                f"pair-{node}", client_id=f"bench-pair-{node}",
                extra=state % (f"pair-{node}", shared) + f'[cluster]\nnode = "{node}"\n')
                for node in ("a", "b")]
            for proc, _ in (solo, *pair):
                pause(proc)
            took = _publish(services.broker_port, stream)
            print(f"published {n} messages in {took:.1f} s; three collectors frozen")
            solo_s, (solo_cpu,) = _drain([solo], n, 300)
            pair_s, pair_cpu = _drain(pair, n, 600)
            leaders = [get_json(f"{http}/healthz").get("leading") for _, http in pair]
            print("\n| collectors | fleet drain | fleet rate | ratio | CPU per message, each process |")
            print("|---|---|---|---|---|")
            print(f"| 1 | {solo_s:.2f} s | {n / solo_s:,.0f} msg/s | 1.00x | "
                  f"{solo_cpu / n * 1e6:.0f} µs |")
            print(f"| 2 (one store, one leader) | {pair_s:.2f} s | {n / pair_s:,.0f} msg/s | "
                  f"{solo_s / pair_s:.2f}x | "
                  + ", ".join(f"{c / n * 1e6:.0f} µs" for c in pair_cpu) + " |")
            print(f"\nload average after: {load()}; leading (a, b): {leaders}")
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
