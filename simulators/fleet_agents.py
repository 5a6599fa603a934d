"""Full fidelity: every simulated cabinet is polled by a real ``cabinet_agent`` Agent.

One worker process holds a shard of cabinets on one asyncio loop: for each, a ``CabinetSim``
served by its own Modbus TCP server on a free loopback port, and an ``Agent`` (poller, classifier,
its own MQTT connection and Last Will) that polls it over TCP exactly as on a Pi. The parent
spreads the fleet over a few such processes (Python runs one core per process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.synchronize
import signal
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cabinet_agent.cabinet_model import load_cabinet_model
from cabinet_agent.config import (
    AgentSettings,
    CabinetSection,
    MqttSection,
    PollingSection,
    SimulationSection,
    TcpBus,
)
from cabinet_agent.outbox import Outbox
from cabinet_agent.service import Agent
from cabinet_agent.sources.assemble import open_sources

from .cabinet import CabinetSim, DeviceFault
from .fleet_plan import CabinetPlan, Incident, IncidentScenario, due, timed_actions
from .modbus_server import CabinetModbusServer

__all__ = ["AgentOptions", "ShardReport", "run_shard"]

log = logging.getLogger(__name__)

TICK_S = 0.1
REPORT_S = 1.0
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class AgentOptions:
    broker_host: str
    broker_port: int
    start: datetime
    speed: float
    poll_s: float = 1.0
    telemetry_s: float = 10.0
    keepalive_s: int = 30


@dataclass(slots=True)
class ShardReport:
    """What one worker tells the parent every second (picklable)."""

    shard: int
    cabinets: int
    online: int = 0
    sim_time: str = ""
    slots: dict[str, int] = field(default_factory=dict)  # present / charging / full / empty
    doors_open: int = 0
    mains_off: int = 0
    done: bool = False


def _sim_for(plan: CabinetPlan, options: AgentOptions) -> CabinetSim:
    cabinet = load_cabinet_model(plan.model)
    sim = CabinetSim(cabinet, start=options.start, speed=options.speed, seed=plan.seed,
                     asset_prefix=plan.asset_prefix, scenario=IncidentScenario(plan))
    if plan.incident is Incident.FAULTY_IPAD:
        with contextlib.suppress(ValueError):
            sim.remove(1)
        sim.insert(1, soc=0.3, broken=True)
    return sim


def _agent_for(plan: CabinetPlan, sim: CabinetSim, port: int, options: AgentOptions) -> Agent:
    settings = AgentSettings(
        cabinet=CabinetSection(site=plan.site, id=plan.cabinet, model=plan.model,
                               asset_tags={i: sim.default_asset_tag(i)
                                           for i in range(1, plan.slots + 1)}),
        buses={"main": TcpBus(host="127.0.0.1", port=port)},
        mqtt=MqttSection(host=options.broker_host, port=options.broker_port,
                         keepalive_s=options.keepalive_s, reconnect_min_s=0.5, reconnect_max_s=5),
        polling=PollingSection(interval_s=options.poll_s, telemetry_interval_s=options.telemetry_s),
        # The agent counts durations in the simulation's seconds, as its cabinet runs them.
        simulation=SimulationSection(speed=options.speed),
    )
    # A simulated fleet keeps nothing across runs: an in-memory outbox per agent, not 138 files
    # under the user's state directory.
    return Agent(settings, sim.cabinet, open_sources(settings, sim.cabinet), outbox=Outbox(":memory:"))


def _apply_actions(plan: CabinetPlan, sim: CabinetSim, before: datetime, after: datetime) -> None:
    for action in due(timed_actions(plan.incident), before, after):
        if action.action == "mains-off":
            sim.set_mains(False)
        elif action.action == "mains-on":
            sim.set_mains(True)
        elif action.action == "device-dead":
            sim.set_device_fault("climate", DeviceFault.DEAD)


def _report(shard: int, sims: list[CabinetSim], agents: list[Agent]) -> ShardReport:
    slots: Counter[str] = Counter()
    report = ShardReport(shard, len(sims))
    for sim in sims:
        truth = sim.truth()
        report.sim_time = truth.sim_time.strftime("%a %H:%M")
        report.doors_open += truth.door_open
        report.mains_off += not truth.mains_on
        for s in truth.slots:
            slots["present" if s.present else "empty"] += 1
            slots["charging"] += s.charging
    report.slots = dict(slots)
    report.online = sum(a.link.connected for a in agents)
    return report


async def _shard(shard: int, plans: list[CabinetPlan], options: AgentOptions,
                 stop: multiprocessing.synchronize.Event, reports: Any) -> None:
    sims = [_sim_for(plan, options) for plan in plans]
    servers: list[CabinetModbusServer] = []
    agents: list[Agent] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for plan, sim in zip(plans, sims, strict=True):
            server = CabinetModbusServer(sim)
            _, port = await server.start()
            servers.append(server)
            agent = _agent_for(plan, sim, port, options)
            agents.append(agent)
            tasks.append(asyncio.create_task(agent.run(), name=f"agent-{plan.site}-{plan.cabinet}"))
        for sim in sims:
            sim.tick()  # the wall-clock reference
        stopped = asyncio.get_running_loop().run_in_executor(None, stop.wait)
        next_report = 0.0
        loop = asyncio.get_running_loop()
        while not stopped.done():
            for plan, sim in zip(plans, sims, strict=True):
                before = sim.now
                sim.tick()
                _apply_actions(plan, sim, before, sim.now)
            if loop.time() >= next_report:
                reports.put(_report(shard, sims, agents))
                next_report = loop.time() + REPORT_S
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise RuntimeError(f"{task.get_name()} failed") from task.exception()
            await asyncio.wait([stopped], timeout=TICK_S)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Each agent leaves its retained "stopped" status and disconnects cleanly.
        await asyncio.gather(*(asyncio.to_thread(a.stop, "fleet simulator stopped") for a in agents),
                             return_exceptions=True)
        for server in servers:
            await server.stop()
        reports.put(ShardReport(shard, len(sims), done=True))


def run_shard(shard: int, plans: list[CabinetPlan], options: AgentOptions,
              stop: multiprocessing.synchronize.Event, reports: Any, log_level: str) -> None:
    """Entry point of one worker process."""
    logging.basicConfig(level=log_level, format=f"%(asctime)s shard{shard} %(levelname)s "
                                                "%(name)s: %(message)s")
    # Ctrl-C reaches the whole process group: the parent sets ``stop`` and we end cleanly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_shard(shard, plans, options, stop, reports))
