"""The dashboard at fleet scale, in one run (docs/benchmarks.md, "Dashboard overview render time"):

1. overview: the district (138 cabinets, ~2,400 slots) and 80,000 cabinets (paginated, 200 cabinets
   a page) through the real HTTP page and JSON routes (in-process ASGI), computed from scratch
   (``build_overview`` over ``fleet.snapshot()``, what every request did before) and from the kept
   counts (``OverviewCache``, what the dashboard does now); also with the cabinets that report
   between two auto-refreshes (5 s at one telemetry a minute: 1/12 of the fleet) changed;
2. history: the slot history's memory at 80,000 cabinets × 32 slots (tracemalloc) after one round
   of telemetry from every cabinet, after its rings are full, and with every slot flapping; and the
   time of one sampler tick;
3. stats: ``GET /api/stats`` with 80,000 cabinets' integrity counters, bounded (the default) and
   with the full list (``?integrity=all&integrity_limit=100000``, what it always returned before).

    .venv/bin/python bench/overview_render.py [--only overview|history|stats]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    DoorState,
    MainsState,
    SlotInfo,
    SlotState,
    StatusMessage,
    TelemetryMessage,
)
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import Auth, Role, Scope, User, UserStore
from server.fleet import CabinetView, Fleet, FleetStatus, SlotView
from server.ingest import MqttStats
from server.integrity import Integrity
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from server.web.history import SlotHistory
from server.web.overview import Overview, build_overview

NOW = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
SIZES = (8, 16, 32)  # the district mixes these; 138 cabinets average ~17 slots
STATES = [SlotState.CHARGING, SlotState.CHARGED, SlotState.CHARGED, SlotState.EMPTY, SlotState.FAULT]
BOOT = "b" * 32


def _telemetry(site: str, cabinet: str, seq: int, states: list[SlotState],
               at: datetime) -> TelemetryMessage:
    env = {"v": 1, "site": site, "cabinet": cabinet, "boot_id": BOOT, "seq": seq, "ts": at,
           "clock_synced": True}
    return TelemetryMessage(**env, power_w=[10.0] * len(states), states=states,  # type: ignore[arg-type]
                            temperature_c=21.0, door=DoorState.CLOSED, mains=MainsState.ON,
                            devices=[])


def world(cabinets: int, per_school: int = 3,
          integrity: Integrity | None = None) -> tuple[ApiSources, int]:
    schools = -(-cabinets // per_school)
    municipalities = max(1, schools // 20)
    org = Organisation.model_validate({
        "district": "Bench", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
        "municipalities": [{"id": f"m{m}", "name": f"Gemeinde {m}"} for m in range(municipalities)],
        "schools": [{"site": f"s{s}", "name": f"Schule {s}", "municipality": f"m{s % municipalities}"}
                    for s in range(schools)],
    })
    # Every slot holds an iPad with a tag, as the inventory would give it (Fleet's tag source).
    sizes = {f"s{n // per_school}/k{n % per_school}": (n, SIZES[n % 3] if n % 7 else 8)
             for n in range(cabinets)}

    def tags(site: str, cabinet: str) -> dict[int, str]:
        n, size = sizes[f"{site}/{cabinet}"]
        return {i + 1: f"T{n}-{i}" for i in range(size)}

    fleet, slots = Fleet(tags), 0
    for n in range(cabinets):
        size = SIZES[n % 3] if n % 7 else 8
        site, cabinet = f"s{n // per_school}", f"k{n % per_school}"
        env = {"v": 1, "site": site, "cabinet": cabinet, "boot_id": BOOT, "seq": 0, "ts": NOW,
               "clock_synced": True}
        status = StatusMessage(**env, status=AgentStatus.ONLINE)  # type: ignore[arg-type]
        fleet.apply(status, NOW)
        if integrity is not None:
            integrity.observe(status, NOW)
        fleet.apply(BirthMessage(**env, agent_version="0.1", config_hash="00000000",  # type: ignore[arg-type]
                                 cabinet_model="m", slot_count=size,
                                 slots=[SlotInfo(slot=i + 1) for i in range(size)],
                                 poll_interval_s=1.0, telemetry_interval_s=10.0), NOW)
        fleet.apply(_telemetry(site, cabinet, 1, [STATES[(n + i) % 5] for i in range(size)], NOW),
                    NOW)
        slots += size
    store = UserStore(open_store(None))
    store.add_user(User("admin", Role.ADMIN), "bench-password", NOW)
    stats: Callable[[], IngestStats] = (
        (lambda: IngestStats(0, 0, {})) if integrity is None
        else (lambda: IngestStats(0, 0, {}, integrity=integrity.snapshot())))
    sources = ApiSources(fleet=fleet, alerts=StoredState.in_memory(), clock=lambda: NOW, org=org,
                         ingest_stats=stats,
                         mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(store, lambda: NOW))
    return sources, slots


class FromScratch(Dashboard):
    """The overview as every request computed it before: a pass over every slot, a sort."""

    def overview(self, scope: Scope, page: int = 1, per_page: int = 200) -> Overview:
        return build_overview(self.index, self.sources.fleet.snapshot(),
                              self.firing_counts(scope), scope.sees, page, per_page)


def churn(sources: ApiSources, cabinets: int, every: int) -> Callable[[], None]:
    """A function that changes every ``every``-th cabinet (a new state for one slot), as the
    cabinets reporting between two auto-refreshes would."""
    rounds = [0]

    def run() -> None:
        rounds[0] += 1
        at = NOW + timedelta(seconds=rounds[0])
        for n in range(rounds[0] % every, cabinets, every):
            view = sources.fleet.get(f"s{n // 3}", f"k{n % 3}")
            assert view is not None
            states = [s.state for s in view.slots]
            states[0] = STATES[(rounds[0] + n) % 5]
            sources.fleet.apply(_telemetry(view.site, view.cabinet, rounds[0] + 1, states, at), at)
    return run


async def measure(app: object, token: str, paths: list[str], runs: int,
                  between: Callable[[], None] | None = None) -> dict[str, tuple[float, float]]:
    """Per path: (the first request, the median of the others)."""
    out = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                 base_url="http://b",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        for path in paths:
            times = []
            for _ in range(runs + 1):
                if between is not None:
                    between()
                start = time.perf_counter()
                response = await client.get(path)
                times.append(time.perf_counter() - start)
                assert response.status_code == 200, (path, response.status_code)
            out[path] = (times[0] * 1000, statistics.median(times[1:]) * 1000)
    return out


def bench_overview() -> None:
    print("\n### overview\n")
    print("| fleet | slots | request | from scratch (before): median ms | kept counts (now): "
          "first request ms | kept counts (now): median ms |\n|---|---|---|---|---|---|")
    for cabinets, runs in ((138, 20), (80_000, 5)):
        sources, slots = world(cabinets)
        token = sources.auth.store.create_token("admin", "bench", NOW)
        paths = ["/", "/api/overview"] + (["/?page=200"] if cabinets > 1000 else [])
        results = {}
        for name, kind in (("before", FromScratch), ("now", Dashboard)):
            app = create_app(sources)
            install_dashboard(app, kind(sources))
            results[name] = asyncio.run(measure(app, token, paths, runs))
        for path in paths:
            print(f"| {cabinets:,} cabinets | {slots:,} | GET {path} | {results['before'][path][1]:.1f} "
                  f"| {results['now'][path][0]:.1f} | {results['now'][path][1]:.1f} |")
        if cabinets > 1000:  # a twelfth of the fleet reported between two requests
            app = create_app(sources)
            install_dashboard(app, Dashboard(sources))
            changes = churn(sources, cabinets, 12)
            changes()
            warm = asyncio.run(measure(app, token, ["/"], 1))  # fill the counts first
            del warm
            start = time.perf_counter()
            changes()
            apply_ms = (time.perf_counter() - start) * 1000
            churned = asyncio.run(measure(app, token, ["/"], runs, changes))
            print(f"| {cabinets:,} cabinets, {cabinets // 12:,} changed before each request "
                  f"| {slots:,} | GET / | – | – | {churned['/'][1]:.1f} |")
            print(f"\n(applying those {cabinets // 12:,} telemetry messages to the fleet, not "
                  f"counted above: {apply_ms:.0f} ms)")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def bench_history(cabinets: int = 80_000, slots: int = 32) -> None:
    print(f"\n### slot history, {cabinets:,} cabinets × {slots} slots\n")
    variants = 150  # distinct slot tuples a round, shared by the cabinets (the history keeps none)

    def views(round_no: int, flap: bool = False, count: int = cabinets) -> list[CabinetView]:
        at = NOW + timedelta(seconds=60 * round_no)
        shared = [tuple(SlotView(i + 1, f"T{v}-{i}",
                                 STATES[(v + i + (round_no if flap else 0)) % 5],
                                 5.0 + (v + i + round_no) % 150 / 10, at) for i in range(slots))
                  for v in range(variants)]
        return [CabinetView(f"s{n // 3}", f"k{n % 3}", NOW, at, at, status=FleetStatus.ONLINE,
                            slots=shared[n % variants]) for n in range(count)]

    history = SlotHistory()
    round_no = 0
    batch = views(round_no)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]

    def row(label: str) -> None:
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - base
        usage = history.usage()
        print(f"| {label} | {usage.depth} | {usage.samples:,} | {usage.transitions:,} "
              f"| {_mb(usage.data_bytes)} | {_mb(traced)} |")

    history.observe(batch, NOW)
    del batch
    print("| after | readings a slot keeps | readings | state changes | array payload "
          "| traced memory (all of it) |\n|---|---|---|---|---|---|")
    row("one round of telemetry from every cabinet")
    depth = history.usage().depth
    for round_no in range(1, depth + 1):
        batch = views(round_no)
        history.observe(batch, NOW + timedelta(seconds=60 * round_no))
        del batch
    row(f"{depth} more rounds (every ring full)")
    for round_no in range(depth + 1, depth + 1 + 2 * history.usage().transitions_per_slot + 2):
        batch = views(round_no, flap=True)
        history.observe(batch, NOW + timedelta(seconds=60 * round_no))
        del batch
    row("then every slot changing its state every round (the worst case)")
    tracemalloc.stop()
    del history
    gc.collect()
    # One sampler tick: the cabinets that reported in 5 s at one telemetry a minute (a twelfth).
    history = SlotHistory()
    for round_no in range(3):
        history.observe(views(round_no), NOW + timedelta(seconds=60 * round_no))
    tick = cabinets // 12
    for label, flap in (("readings only (no slot changed state)", False),
                        ("every slot of them changing state", True)):
        times = []
        for round_no in range(3, 8):
            batch = views(round_no, flap)[(round_no * tick) % (cabinets - tick):][:tick]
            start = time.perf_counter()
            history.observe(batch, NOW + timedelta(seconds=60 * round_no))
            times.append(time.perf_counter() - start)
        print(f"\nOne sampler tick, {tick:,} changed cabinets (5 s at one telemetry a minute), "
              f"{label}: median {statistics.median(times) * 1000:.0f} ms of 5 "
              f"(without tracemalloc).")


def bench_stats(cabinets: int = 80_000) -> None:
    print(f"\n### GET /api/stats, {cabinets:,} cabinets\n")
    integrity = Integrity()
    sources, _ = world(cabinets, integrity=integrity)
    token = sources.auth.store.create_token("admin", "bench", NOW)
    app = create_app(sources)
    start = time.perf_counter()
    integrity.snapshot()
    snapshot_ms = (time.perf_counter() - start) * 1000
    paths = ["/api/stats", "/api/stats?integrity=none",
             "/api/stats?integrity=all&integrity_limit=100000"]
    results = asyncio.run(measure(app, token, paths, 5))
    print("| request | median ms |\n|---|---|")
    for path, (_, ms) in results.items():
        print(f"| GET {path} | {ms:.1f} |")
    print(f"\n(of which `Integrity.snapshot()` in the pipeline's stats: {snapshot_ms:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("overview", "history", "stats"))
    args = parser.parse_args()
    if args.only in (None, "overview"):
        bench_overview()
    if args.only in (None, "history"):
        bench_history()
    if args.only in (None, "stats"):
        bench_stats()


if __name__ == "__main__":
    main()
