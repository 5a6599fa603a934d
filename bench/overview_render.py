"""Overview render time: the district (138 cabinets, ~2,400 slots) and 80,000 cabinets (paginated,
200 cabinets a page), through the real HTTP page and JSON routes (in-process ASGI), in one run.

    .venv/bin/python bench/overview_render.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime

import httpx

from cabinet_agent.protocol import (
    AgentStatus,
    BirthMessage,
    DoorState,
    MainsState,
    SlotInfo,
    SlotState,
    StatusMessage,
    TelemetryMessage,
)
from server.alerts.store import MemoryState
from server.api import ApiSources, create_app
from server.auth import Auth, Role, User, UserStore
from server.fleet import Fleet
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard

NOW = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
SIZES = (8, 16, 32)  # the district mixes these; 138 cabinets average ~17 slots
STATES = [SlotState.CHARGING, SlotState.CHARGED, SlotState.CHARGED, SlotState.EMPTY, SlotState.FAULT]


def world(cabinets: int, per_school: int = 3) -> tuple[ApiSources, int]:
    schools = -(-cabinets // per_school)
    municipalities = max(1, schools // 20)
    org = Organisation.model_validate({
        "district": "Bench", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
        "municipalities": [{"id": f"m{m}", "name": f"Gemeinde {m}"} for m in range(municipalities)],
        "schools": [{"site": f"s{s}", "name": f"Schule {s}", "municipality": f"m{s % municipalities}"}
                    for s in range(schools)],
    })
    fleet, slots = Fleet(), 0
    for n in range(cabinets):
        size = SIZES[n % 3] if n % 7 else 8
        env = {"v": 1, "site": f"s{n // per_school}", "cabinet": f"k{n % per_school}",
               "boot_id": "b" * 32, "seq": 0, "ts": NOW, "clock_synced": True}
        fleet.apply(StatusMessage(**env, status=AgentStatus.ONLINE), NOW)  # type: ignore[arg-type]
        fleet.apply(BirthMessage(**env, agent_version="0.1", config_hash="00000000",  # type: ignore[arg-type]
                                 cabinet_model="m", slot_count=size,
                                 slots=[SlotInfo(slot=i + 1, asset_tag=f"T{n}-{i}") for i in range(size)],
                                 poll_interval_s=1.0, telemetry_interval_s=10.0), NOW)
        fleet.apply(TelemetryMessage(**env, power_w=[10.0] * size,  # type: ignore[arg-type]
                                     states=[STATES[(n + i) % 5] for i in range(size)],
                                     temperature_c=21.0, door=DoorState.CLOSED, mains=MainsState.ON,
                                     devices=[]), NOW)
        slots += size
    store = UserStore(None)
    store.add_user(User("admin", Role.ADMIN), "bench-password", NOW)
    sources = ApiSources(fleet=fleet, alerts=MemoryState(), clock=lambda: NOW, org=org,
                         ingest_stats=lambda: IngestStats(0, 0, {}),
                         mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(store, lambda: NOW))
    return sources, slots


async def measure(sources: ApiSources, paths: list[str], runs: int) -> dict[str, float]:
    app = create_app(sources)
    install_dashboard(app, Dashboard(sources))
    token = sources.auth.store.create_token("admin", "bench", NOW)
    out = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        for path in paths:
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                response = await client.get(path)
                times.append(time.perf_counter() - start)
                assert response.status_code == 200, (path, response.status_code)
            out[path] = statistics.median(times) * 1000
    return out


def main() -> None:
    print("| fleet | slots | request | median ms |\n|---|---|---|---|")
    for cabinets, runs in ((138, 20), (80_000, 5)):
        sources, slots = world(cabinets)
        paths = ["/", "/api/overview"] + (["/?page=200"] if cabinets > 1000 else [])
        # a page request with a session would be the same work; the token keeps the bench simple
        results = asyncio.run(measure(sources, paths, runs))
        for path, ms in results.items():
            print(f"| {cabinets:,} cabinets | {slots:,} | GET {path} | {ms:.1f} |")


if __name__ == "__main__":
    main()
