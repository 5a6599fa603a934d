"""Alert tick CPU at fleet scale: every rule over the whole fleet (the engine given a snapshot
callable) against the incremental engine (given the fleet: what changed plus a sweep slice), side by
side on the same in-memory fleet, the same clock and the same messages, in one run.

    .venv/bin/python bench/alert_tick.py                      # 80,000 cabinets × 32 slots
    .venv/bin/python bench/alert_tick.py --cabinets 20000 --ticks 30 --store sqlite

The fleet is built with ``Fleet.apply`` of real protocol messages (status, birth, telemetry) for a
school-day evening: most iPads charged, some charging, a few slots empty, idle or faulty, a few doors
open, a third of the schools shared-pool (so the return check has something to find). Then, per
1 s tick, 1/60 of the cabinets send telemetry (each cabinet every 60 s, as `cabinet-sim fleet
--mode light` does), a few change a slot, and both engines tick; the time of each tick is measured
(process CPU time: the benchmark is single-threaded). The first tick of each engine (which creates
the standing alerts, and for the incremental one reads the whole fleet once) is reported apart.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
from server.alerts.engine import AlertEngine
from server.alerts.rules import CabinetOffline, RulesSettings, build_rules
from server.alerts.state import StoredState
from server.fleet import Fleet
from server.org import Organisation
from server.schoolcal import Calendars
from server.store import open_store

# Monday 2026-11-02 17:00 UTC = 18:00 in Berlin: after the return check, inside the charging window.
NOW = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)
SLOTS = 32
PER_SCHOOL = 3
TELEMETRY_S = 60
BOOT = "b" * 32
HOLIDAYS = Path(__file__).resolve().parents[1] / "deploy" / "calendars" / "saarland-schulferien-2025-2027.ics"


def slot_states(n: int, turn: int) -> list[SlotState]:
    """A plausible evening: 1 in 40 slots empty, 1 in 100 idle or faulty, a few charging."""
    states = []
    for i in range(SLOTS):
        x = (n * 7919 + i * 104_729 + turn * 31) % 1000
        if x < 25:
            states.append(SlotState.EMPTY)
        elif x < 32:
            states.append(SlotState.PRESENT_IDLE)
        elif x < 35:
            states.append(SlotState.FAULT)
        elif x < 200:
            states.append(SlotState.CHARGING)
        else:
            states.append(SlotState.CHARGED)
    return states


def power(state: SlotState) -> float | None:
    return {SlotState.CHARGING: 18.0, SlotState.CHARGED: 0.5, SlotState.PRESENT_IDLE: 0.05,
            SlotState.FAULT: 0.0}.get(state)


class World:
    def __init__(self, cabinets: int) -> None:
        self.cabinets = cabinets
        self.schools = -(-cabinets // PER_SCHOOL)
        municipalities = max(1, self.schools // 20)
        self.org = Organisation.model_validate({
            "district": "Bench", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
            "municipalities": [{"id": f"m{m}", "name": f"Gemeinde {m}"} for m in range(municipalities)],
            "schools": [{"site": f"s{s}", "name": f"Schule {s}", "municipality": f"m{s % municipalities}",
                         "policy": "shared_pool" if s % 3 == 0 else "one_to_one"}
                        for s in range(self.schools)],
            "cabinets": [{"school": f"s{n // PER_SCHOOL}", "id": f"k{n % PER_SCHOOL}",
                          **({"slot_rating_w": 25.0} if n % 10 == 0 else {})}
                         for n in range(cabinets)],
        })
        self.calendars = Calendars(self.org.zone, self.org.state, [HOLIDAYS])
        # Every slot holds an iPad with a tag, as the inventory would give it (Fleet's tag source).
        self.fleet = Fleet(lambda site, cabinet: {
            i + 1: f"T{int(site[1:]) * PER_SCHOOL + int(cabinet[1:])}-{i}" for i in range(SLOTS)})
        self.seq = [0] * cabinets
        self.now = NOW
        for n in range(cabinets):
            start = NOW - timedelta(hours=3)
            self.fleet.apply(StatusMessage(**self._env(n, start), status=AgentStatus.ONLINE), start)  # type: ignore[arg-type]
            self.fleet.apply(BirthMessage(
                **self._env(n, start), agent_version="0.1", config_hash="00000000",  # type: ignore[arg-type]
                cabinet_model="m", slot_count=SLOTS,
                slots=[SlotInfo(slot=i + 1) for i in range(SLOTS)],
                poll_interval_s=1.0, telemetry_interval_s=float(TELEMETRY_S)), start)
            self.telemetry(n, start)  # every slot's state since three hours ago ...
            # ... and the last telemetry within the last minute, spread evenly.
            self.telemetry(n, NOW - timedelta(seconds=TELEMETRY_S * (1 - n / cabinets)))

    def _env(self, n: int, ts: datetime) -> dict[str, object]:
        self.seq[n] += 1
        return {"v": 1, "site": f"s{n // PER_SCHOOL}", "cabinet": f"k{n % PER_SCHOOL}",
                "boot_id": BOOT, "seq": self.seq[n], "ts": ts, "clock_synced": True}

    def telemetry(self, n: int, at: datetime, turn: int = 0) -> None:
        states = slot_states(n, turn)
        self.fleet.apply(TelemetryMessage(
            **self._env(n, at), power_w=[power(s) for s in states], states=states,  # type: ignore[arg-type]
            temperature_c=21.0 + (n % 7), door=DoorState.OPEN if n % 97 == 0 else DoorState.CLOSED,
            mains=MainsState.ON, devices=[]), at)

    def step(self, tick: int) -> None:
        """One second: 1/60 of the cabinets send telemetry; every 50th of those changed a slot."""
        self.now = NOW + timedelta(seconds=tick)
        share = -(-self.cabinets // TELEMETRY_S)
        first = (tick * share) % self.cabinets
        for n in range(first, min(first + share, self.cabinets)):
            self.telemetry(n, self.now, turn=tick if n % 50 == 0 else 0)


def engine(world: World, incremental: bool, store: StoredState) -> AlertEngine:
    offline = CabinetOffline(pending_s=120, silence_factor=3, min_silence_s=30)
    fleet = world.fleet if incremental else world.fleet.snapshot
    return AlertEngine(build_rules(RulesSettings(), offline), store, fleet, lambda: world.now,
                       org=world.org, calendars=world.calendars, settle=timedelta(seconds=10),
                       sweep=timedelta(seconds=30))


def timed(fn: Callable[[], None]) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cabinets", type=int, default=80_000)
    parser.add_argument("--ticks", type=int, default=20, help="ticks measured after the first")
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    args = parser.parse_args()

    started = time.perf_counter()
    world = World(args.cabinets)
    print(f"{args.cabinets:,} cabinets × {SLOTS} slots built in {time.perf_counter() - started:.0f} s "
          f"({os.cpu_count()} cores, Python {platform.python_version()}, store {args.store})")
    with tempfile.TemporaryDirectory() as tmp:
        def store(name: str) -> StoredState:  # the store in memory, or its file in a state dir
            return StoredState.in_memory() if args.store == "memory" else StoredState(
                open_store(Path(tmp) / name))

        full, incremental = engine(world, False, store("full")), engine(world, True, store("inc"))
        first = {"full": timed(full.tick), "incremental": timed(incremental.tick)}
        times: dict[str, list[float]] = {"full": [], "incremental": []}
        evaluated: list[int] = []
        changed: list[int] = []
        for tick in range(1, args.ticks + 1):
            world.step(tick)
            times["full"].append(timed(full.tick))
            times["incremental"].append(timed(incremental.tick))
            evaluated.append(incremental.last.evaluated)
            changed.append(incremental.last.changed)
        alerts = {name: len(e.store.active()) for name, e in (("full", full), ("incremental", incremental))}

    print(f"standing alerts after the run: full {alerts['full']:,}, incremental {alerts['incremental']:,}")
    print(f"incremental tick evaluates {statistics.median(evaluated):,.0f} cabinets "
          f"(median; {statistics.median(changed):,.0f} changed + the sweep slice + due alerts)")
    print(f"{'engine':12} {'first tick':>10} {'median':>9} {'max':>9}  (CPU seconds per tick, "
          f"{args.ticks} ticks)")
    for name in ("full", "incremental"):
        print(f"{name:12} {first[name]:10.3f} {statistics.median(times[name]):9.4f} "
              f"{max(times[name]):9.4f}")
    ratio = statistics.median(times["full"]) / statistics.median(times["incremental"])
    print(f"incremental is {ratio:.0f}× cheaper per tick")


if __name__ == "__main__":
    main()
