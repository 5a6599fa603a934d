"""One process of the alert-quality benchmark: its schools' cabinets, a ``Fleet``, the real
``AlertEngine`` and ``Dispatcher`` as server/app.py builds them, all on one fake clock.

Alerts are per cabinet, groups per receiver and cabinet, digests per school: a process that holds
whole schools sees exactly what the collector would see of them, so the two processes' results are
simply merged (``bench/alert_quality.py``).
"""

from __future__ import annotations

import heapq
import logging
import math
import tempfile
import time as wall
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alert_quality_plan import World, build_world
from alert_quality_sim import CabinetRun, Ledger

from cabinet_agent.cabinet_model import LoadedCabinet, load_cabinet_model
from cabinet_agent.common.protocol import EventMessage
from server.alerts.engine import AlertEngine
from server.alerts.model import Alert
from server.alerts.routing import Router
from server.alerts.rules import CabinetOffline, RulesSettings, Severity, build_rules
from server.alerts.state import StoredState
from server.alerts.status import alert_statuses
from server.assets import AssetRegister
from server.battery import BatteryAgeing
from server.config import AlertSettings
from server.inventory import Inventory
from server.notify.base import Notification
from server.notify.dispatch import Dispatcher, GroupTiming
from server.notify.settings import NotifySettings
from server.sessions import SessionRecorder

__all__ = ["DISPATCH_EVERY_S", "Options", "RecordingNotifier", "run_part"]

DISPATCH_EVERY_S = 600.0  # notifications are flushed this often (the collector: every second)


@dataclass(frozen=True, slots=True)
class Options:
    weeks: int = 10
    cabinets: int = 138
    schools: int = 23
    municipalities: int = 10
    seed: int = 1
    incidents_per_cabinet: float = 4.0
    no_incidents: bool = False


def world_for(options: Options, tmp: Path) -> World:
    world = build_world(tmp, weeks=options.weeks, cabinets=options.cabinets,
                        schools=options.schools, municipalities=options.municipalities,
                        seed=options.seed, incidents_per_cabinet=options.incidents_per_cabinet)
    if options.no_incidents:
        world.incidents = []
    return world


class RecordingNotifier:
    """A ``server.notify.base.Notifier`` that keeps what it was asked to send, with the fake time."""

    def __init__(self, clock: list[datetime]) -> None:
        self._clock = clock
        self.sent: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return "record"

    def send(self, notification: Notification) -> None:
        payload = notification.payload
        self.sent.append({
            "at": self._clock[0].timestamp(), "kind": notification.kind, "key": notification.key,
            "site": payload.get("site") or notification.key.split("/")[1],
            "alerts": [(a["labels"].get("alertname", ""), a.get("status", ""))
                       for a in payload.get("alerts", [])],
        })


def _alert_row(alert: Alert) -> dict[str, Any]:
    return {"labels": dict(alert.labels), "annotations": dict(alert.annotations),
            "active_at": alert.active_at.timestamp(), "starts_at": alert.starts_at.timestamp(),
            "ends_at": alert.ends_at.timestamp() if alert.ends_at else None}


def _share(world: World, part: int, parts: int) -> set[str]:
    """The schools of process ``part``: whole schools, balanced by their number of slots (the
    work is per slot and poll), largest first onto the least loaded process."""
    slots: dict[str, int] = {}
    for cabinet in world.cabinets:
        slots[cabinet.site] = slots.get(cabinet.site, 0) + cabinet.slots
    loads = [0] * parts
    share: list[set[str]] = [set() for _ in range(parts)]
    for site in sorted(slots, key=lambda s: (-slots[s], s)):
        k = loads.index(min(loads))
        loads[k] += slots[site]
        share[k].add(site)
    return share[part]


def run_part(options: Options, part: int, parts: int) -> dict[str, Any]:
    """Simulate the schools ``part`` of ``parts`` (every ``parts``-th site) over the term."""
    started = wall.process_time()
    logging.disable(logging.WARNING)  # the engine logs every alert it raises
    with tempfile.TemporaryDirectory(prefix="alert-quality-") as tmp:
        world = world_for(options, Path(tmp))
        mine = _share(world, part, parts)
        t0, t_end = world.sim_start.timestamp(), world.end.timestamp()
        ledger = Ledger()
        models: dict[str, LoadedCabinet] = {}
        runs: list[CabinetRun] = []
        for spec in world.cabinets:
            if spec.site not in mine:
                continue
            if spec.model not in models:
                models[spec.model] = load_cabinet_model(
                    world.door_only_path if spec.kind == "door" else spec.model)
            incidents = [i for i in world.incidents if (i.site, i.cabinet) == (spec.site, spec.cabinet)]
            school = world.org.school(spec.site)
            assert school is not None
            runs.append(CabinetRun(spec, models[spec.model], world.calendars.for_site(spec.site),
                                   incidents, t0, t_end, ledger, school.return_check))

        clock = [world.sim_start]
        # The collector's inventory holds the asset tags (server/assets.py), as an MDM import would.
        inventory = Inventory.in_memory(lambda: clock[0])
        inventory.seed({(r.spec.site, r.spec.cabinet): r.tags for r in runs}, "bench")
        fleet = AssetRegister(inventory).fleet()
        state = StoredState.in_memory()  # server/app.py's make_state without a [state] dir
        battery = BatteryAgeing()
        sessions = SessionRecorder(None, battery)  # as the collector: session events feed battery_worn
        a = AlertSettings()
        offline = CabinetOffline(pending_s=a.offline_pending_s, silence_factor=a.silence_factor,
                                 min_silence_s=a.min_silence_s, severity=Severity(a.offline_severity))
        receiving_since = world.sim_start
        engine = AlertEngine(
            build_rules(RulesSettings(), offline, battery), state, fleet, lambda: clock[0],
            resolved_retention=timedelta(seconds=a.resolved_retention_s),
            receiving_since=lambda: receiving_since, org=world.org, calendars=world.calendars,
            settle=timedelta(seconds=a.settle_s), sweep=timedelta(seconds=a.sweep_s))
        n = NotifySettings()
        recorder = RecordingNotifier(clock)
        dispatcher = Dispatcher(
            org=world.org, router=Router(world.org, n.school_alerts),
            timing=GroupTiming(timedelta(seconds=n.group_wait_s), timedelta(seconds=n.group_interval_s),
                               timedelta(seconds=n.repeat_interval_s), n.send_resolved),
            notifiers=lambda receiver: [recorder], log_store=state, calendars=world.calendars,
            digest_time=n.digest_time)

        messages = 0

        def deliver(batch: list[object]) -> None:
            nonlocal messages
            now = clock[0]
            for message in batch:
                fleet.apply(message, now)  # type: ignore[arg-type]
                if isinstance(message, EventMessage) and message.session is not None:
                    sessions.record(message)
            messages += len(batch)

        heap: list[tuple[float, int]] = []
        for k, run in enumerate(runs):
            deliver(run.boot(t0))
            heapq.heappush(heap, (t0, k))
        alerts: dict[tuple[str, float], dict[str, Any]] = {}
        next_dispatch, pending_due, next_harvest = t0, math.inf, t0 + 6 * 3600
        ticks = dispatches = 0
        while heap:
            t_poll = heap[0][0]
            t = min(t_poll, next_dispatch, pending_due)
            if t >= t_end:
                break
            clock[0] = datetime.fromtimestamp(t, UTC)
            tick = t >= pending_due
            while heap and heap[0][0] == t:
                _, k = heapq.heappop(heap)
                deliver(runs[k].poll(t))
                heapq.heappush(heap, (runs[k].next_time(t), k))
                tick = True
            if tick:
                engine.tick()
                ticks += 1
            if t >= next_dispatch:
                statuses = alert_statuses(state.all(), state.silences(), state.acks(), clock[0])
                for delivery in dispatcher.due(statuses, clock[0]):
                    delivery.notifier.send(delivery.notification)
                    dispatcher.sent(delivery)
                dispatches += 1
                next_dispatch = (math.floor(t / DISPATCH_EVERY_S) + 1) * DISPATCH_EVERY_S
            due = [x.starts_at.timestamp() for x in state.active()]
            pending_due = min((d for d in due if d > t), default=math.inf)
            if t >= next_harvest:  # resolved alerts are purged after a day: keep them first
                for alert in state.all():
                    alerts[(alert.fingerprint, alert.active_at.timestamp())] = _alert_row(alert)
                next_harvest = t + 6 * 3600
        for alert in state.all():
            alerts[(alert.fingerprint, alert.active_at.timestamp())] = _alert_row(alert)
        sessions.close()
        phases: dict[str, int] = {}
        for run in runs:
            for phase, count in run.polls_by_phase.items():
                phases[phase] = phases.get(phase, 0) + count
        return {
            "alerts": list(alerts.values()),
            "expectations": [asdict(e) for e in ledger.expectations],
            "intervals": [[*key, spans] for key, spans in ledger.intervals.items()],
            "notifications": recorder.sent,
            "cabinets": [[r.spec.site, r.spec.cabinet, r.spec.kind, r.spec.policy, r.spec.model]
                         for r in runs],
            "polls": sum(r.polls for r in runs), "polls_by_phase": phases, "messages": messages,
            "ticks": ticks, "dispatches": dispatches, "cpu_s": wall.process_time() - started,
        }
