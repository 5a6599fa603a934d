"""The incremental alert engine (what changed + a sweep slice per tick) against full evaluation.

The reference is the engine as it was before it became incremental (every rule over the whole
fleet at every tick, ``store.active()`` per rule), kept here as ``ReferenceEngine``. On
random timelines over a fleet larger than the minimum slice:

* the new engine given a snapshot callable (full evaluation) keeps exactly the reference's alerts;
* the incremental engine evaluates every cabinet that sent something at the tick after, and every
  cabinet at least once per sweep; for every cabinet it evaluates, its active alerts are the
  reference's at that tick (so change-driven alerts are raised and resolved at the same tick, and
  time-driven ones at most ``sweep`` later); an alert only starts firing after its condition was
  confirmed at that tick; and an alert of a cabinet the fleet does not know is kept.

The cost tests count what a tick hands to the rules; they do not measure time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cabinet_agent.common.protocol import (
    AgentStatus,
    Certainty,
    DeviceHealth,
    DoorState,
    MainsState,
    SlotState,
    StatusMessage,
)
from server.alerts.engine import AlertEngine
from server.alerts.model import Alert, AlertState
from server.alerts.rules import (
    CabinetOffline,
    Finding,
    Rule,
    RuleContext,
    RulesSettings,
    Severity,
    TemperatureRise,
    build_rules,
)
from server.alerts.rules.base import RuleCache, SlotGroups
from server.alerts.rules.temperature import TemperatureRiseSettings
from server.alerts.state import StoredState
from server.alerts.store import AlertStore
from server.fleet import CabinetKey, CabinetView, Fleet, FleetStatus, SlotView
from server.org import Organisation
from server.schoolcal import Calendars
from tests.support.alert_timeline import HOLIDAYS_ICS, Cabinet
from tests.support.explore import examples
from tests.support.inventory import register_with, tagged_fleet

# Monday 2026-11-02, 15:29:30 local (UTC+1): school hours, the return check, the morning check
# (moved for the test) and the charging window all turn at 15:30, 30 s into every timeline.
T0 = datetime(2026, 11, 2, 14, 29, 30, tzinfo=UTC)
E, C, F, IDLE, FAULT, U = (SlotState.EMPTY, SlotState.CHARGING, SlotState.CHARGED,
                           SlotState.PRESENT_IDLE, SlotState.FAULT, SlotState.UNKNOWN)

ORG = Organisation.model_validate({
    "district_team": "it",
    "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "m", "name": "M"}],
    "schools": [
        {"site": "pool", "name": "Pool", "municipality": "m", "policy": "shared_pool",
         "hours": "07:30-15:30", "return_check": "15:30", "morning_check": "15:30",
         "charging_window": "15:30-07:00"},
        {"site": "own", "name": "Own", "municipality": "m", "policy": "one_to_one",
         "hours": "07:30-15:30", "morning_check": "15:30"},
    ],
    "cabinets": [{"school": "pool", "id": "k0", "slots": {"1": "P-1", "2": "P-2", "3": "P-3"},
                  "slot_rating_w": 25}],
})
# Short pending periods and limits, so that everything can happen within a minute.
RULES = RulesSettings.model_validate({
    "device_fault": {"pending_s": 2}, "ipad_not_returned": {"pending_s": 3},
    "ipad_not_charging": {"pending_s": 2}, "charging_too_long": {"max_hours": 12 / 3600},
    "slot_overpower": {"pending_s": 1}, "door_open": {"pending_s": 6},
    "door_open_after_hours": {"pending_s": 2}, "over_temperature": {"pending_s": 2},
    "temperature_rise": {"rise_c": 5, "window_s": 20}, "mains_lost": {"pending_s": 3},
})
MIN_SILENCE_S = 8.0
OFFLINE_PENDING_S = 3.0
SETTLE_S = 3.0


@dataclass(frozen=True)
class Worn:
    asset_tag: str
    remaining: float = 0.7
    full_charges: int = 40


class WornSource:
    def worn(self) -> list[Worn]:
        return [Worn("P-2"), Worn("own-k1-3")]


def rules() -> list[Rule]:
    offline = CabinetOffline(pending_s=OFFLINE_PENDING_S, silence_factor=3.0,
                             min_silence_s=MIN_SILENCE_S)
    return build_rules(RULES, offline, WornSource())


class ReferenceEngine:
    """The engine before it became incremental (server/alerts/engine.py at that commit), minus
    logging: every rule over the whole fleet at every tick. Since issue 14 its slot rules, too,
    raise nothing new for a cabinet whose agent is away (stale data keeps what fires)."""

    def __init__(self, rules: Sequence[Rule], store: AlertStore,
                 fleet: Callable[[], Sequence[CabinetView]], clock: Callable[[], datetime],
                 resolved_retention: timedelta, receiving_since: Callable[[], datetime | None],
                 org: Organisation, calendars: Calendars, settle: timedelta) -> None:
        self._rules, self._store, self._fleet, self._clock = list(rules), store, fleet, clock
        self._retention, self._receiving_since = resolved_retention, receiving_since
        self._org, self._calendars, self._settle = org, calendars, settle

    def tick(self) -> None:
        now = self._clock()
        receiving_since = self._receiving_since()
        if receiving_since is None:
            return
        cabinets = self._fleet()
        ctx = RuleContext(cabinets, now, receiving_since, self._org, self._calendars)
        settled = now - receiving_since >= self._settle
        known = {c.key for c in cabinets}
        for rule in self._rules:
            seen = self._apply(rule, ctx)
            for alert in self._store.active():
                if alert.name != rule.name or alert.fingerprint in seen:
                    continue
                if not settled or alert.cabinet_key not in known:
                    continue
                if alert.state(now) is AlertState.PENDING:
                    self._store.discard_active(alert.fingerprint)
                else:
                    on_resolve = getattr(rule, "on_resolve", None)
                    extra = on_resolve(alert, ctx) if on_resolve else {}
                    self._store.resolve(alert.fingerprint, now, extra)
        self._store.purge_resolved(now - self._retention)

    def _apply(self, rule: Rule, ctx: RuleContext) -> set[str]:
        seen: set[str] = set()
        for finding in rule.evaluate(ctx):
            labels = {"alertname": rule.name, "severity": rule.severity.value, **finding.labels}
            candidate = Alert(labels, finding.annotations, ctx.now, ctx.now + rule.pending)
            seen.add(candidate.fingerprint)
            current = self._store.get_active(candidate.fingerprint)
            view = ctx.cabinet((labels.get("site", ""), labels.get("cabinet", "")))
            away = view is not None and view.status in (FleetStatus.OFFLINE, FleetStatus.STOPPED)
            if current is None and away and getattr(rule, "fresh_data_only", False):
                continue
            if current is None:
                self._store.put_active(candidate)
            elif current.annotations != candidate.annotations:
                self._store.put_active(Alert(current.labels, finding.annotations,
                                             current.active_at, current.starts_at))
        return seen


class Recorder:
    """A rule that finds nothing and remembers which cabinets each tick handed it."""

    name = "zz_recorder"
    pending = timedelta(0)
    severity = Severity.INFO

    def __init__(self) -> None:
        self.ticks: list[list[CabinetKey]] = []

    def evaluate(self, ctx: RuleContext) -> list[Finding]:
        self.ticks.append([c.key for c in ctx.cabinets])
        return []


# --- the timeline ------------------------------------------------------------------------------

@dataclass
class Clock:
    """The fake clock; also what ``Cabinet`` takes the time of its messages from (``tl.clock()``)."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def clock(self) -> datetime:
        return self.now


def _box(clock: Clock, site: str, cabinet: str, slots: int = 3) -> Cabinet:
    tags = {n: f"{site}-{cabinet}-{n}" for n in range(1, slots + 1)}
    return Cabinet(clock, site=site, cabinet=cabinet, slots=slots, tags=tags,  # type: ignore[arg-type]
                   telemetry_interval_s=1.0)  # silent after MIN_SILENCE_S


def _apply(fleet: Fleet, messages: list[object], at: datetime) -> None:
    for message in messages:
        fleet.apply(message, at)  # type: ignore[arg-type]


Act = tuple[Any, ...]  # ("telemetry", states, powers, door, mains, temperature, device_ok) or (kind,)


def _messages(box: Cabinet, act: Act) -> list[object]:
    kind = act[0]
    if kind == "offline":
        return box.offline()
    if kind == "online":
        return box.online()
    if kind == "stopped":
        return [StatusMessage(**box._env(), status=AgentStatus.STOPPED,  # type: ignore[arg-type]
                              reason="SIGTERM")]
    _, states, powers, door, mains, temperature, device_ok = act
    devices = [DeviceHealth(name="meter-1", ok=device_ok, error=None if device_ok else "timeout")]
    return box.telemetry(states, powers, door=door, mains=mains, temperature=temperature,
                         devices=devices)


class World:
    """One fleet and clock, three engines on it (the reference, the new one given a snapshot
    callable, the incremental one given the fleet), each with its own store and rule instances."""

    def __init__(self, cabinets: int, sweep_s: float, min_slice: int,
                 gap: tuple[int, int] | None = None) -> None:
        self.clock = Clock()
        self.register = register_with(ORG)
        self.fleet = self.register.fleet()
        self.recorder = Recorder()
        self.sweep = timedelta(seconds=sweep_s)
        self.gap = gap  # ticks in which the collector does not receive
        self.receiving: datetime | None = T0
        self.calendars = Calendars(ORG.zone, ORG.state, [HOLIDAYS_ICS])
        self.stores = {name: StoredState.in_memory() for name in ("reference", "full", "incremental")}
        for store in self.stores.values():  # from the state file, before these cabinets report
            for cabinet in ("ghost", "late"):
                store.put_active(Alert({"alertname": "cabinet_offline", "severity": "critical",
                                        "site": "own", "cabinet": cabinet}, {"reason": "lwt"},
                                       T0 - timedelta(hours=1), T0 - timedelta(hours=1)))
        common: dict[str, Any] = {
            "clock": self.clock, "resolved_retention": timedelta(hours=1),
            "receiving_since": lambda: self.receiving, "org": ORG, "calendars": self.calendars,
            "settle": timedelta(seconds=SETTLE_S)}
        self.reference = ReferenceEngine(rules(), self.stores["reference"], self.fleet.snapshot,
                                         **common)
        self.full = AlertEngine(rules(), self.stores["full"], self.fleet.snapshot, **common)
        self.incremental = AlertEngine([*rules(), self.recorder], self.stores["incremental"],
                                       self.fleet, **common, sweep=self.sweep, min_slice=min_slice)
        # Even boxes stand in the shared-pool school, odd ones in the one-to-one school.
        self.boxes = [_box(self.clock, "pool" if n % 2 == 0 else "own", f"k{n // 2}")
                      for n in range(cabinets)]
        self.late = _box(self.clock, "own", "late")  # has an alert from the state file
        self.register.inventory.seed({(b.site, b.cabinet): b.tags for b in [*self.boxes, self.late]},
                                     "test")  # pool/k0 keeps the organisation's P-1 … P-3
        # Each cabinet's absences (its agent offline or stopped) as the ticks saw them: (went away,
        # came back or None). Offline then stopped is one absence (``status_since`` restarts).
        self.absences: dict[CabinetKey, list[tuple[datetime, datetime | None]]] = {}

    def active(self, name: str) -> dict[CabinetKey, set[str]]:
        by_cabinet: dict[CabinetKey, set[str]] = {}
        for alert in self.stores[name].active():
            by_cabinet.setdefault(alert.cabinet_key, set()).add(alert.fingerprint)
        return by_cabinet

    def history(self, name: str, active_only: bool = False) -> list[tuple[object, ...]]:
        store = self.stores[name]
        alerts = store.active() if active_only else store.all()
        return [(a.fingerprint, a.active_at, a.starts_at, a.ends_at, dict(a.annotations))
                for a in sorted(alerts, key=lambda a: (a.active_at, a.fingerprint))]

    def run(self, events: Sequence[tuple[int, int, Act]], ticks: int) -> None:
        """Apply the events (tick, box, act) and tick all three engines once a second; check at
        every tick what must hold between them."""
        by_tick: dict[int, list[tuple[int, Act]]] = {}
        for t, n, act in events:
            by_tick.setdefault(t, []).append((n % len(self.boxes), act))
        for box in self.boxes:  # every cabinet introduces itself first
            _apply(self.fleet, box.online(), self.clock.now)
        last_evaluated: dict[CabinetKey, datetime] = {}
        last_active: set[tuple[object, ...]] | None = None
        previous = T0 - timedelta(seconds=1)
        for t in range(ticks):
            self.clock.now = now = T0 + timedelta(seconds=t)
            if self.gap is not None and self.gap[0] <= t < self.gap[1]:
                self.receiving = None
            elif self.gap is not None and t == self.gap[1]:
                self.receiving = now
                last_evaluated = dict.fromkeys(last_evaluated, now)  # the sweep counts anew
            told: set[CabinetKey] = set()
            for n, act in by_tick.get(t, []):
                box = self.boxes[n]
                _apply(self.fleet, _messages(box, act), now)
                told.add((box.site, box.cabinet))
            if t == ticks // 2:
                _apply(self.fleet, self.late.online(), now)
                told.add(("own", "late"))
            self._note_absences(now)
            handed = len(self.recorder.ticks)
            self.reference.tick()
            self.full.tick()
            self.incremental.tick()

            # The new engine evaluating everything keeps exactly the reference's alerts: the
            # active ones at every tick, all of them whenever an alert ended (or a new one began).
            active = self.history("reference", active_only=True)
            assert self.history("full", active_only=True) == active, t
            began_or_ended = {row[:2] for row in active}
            if began_or_ended != last_active:
                assert self.history("full") == self.history("reference"), t
                last_active = began_or_ended
            if self.receiving is None:
                assert len(self.recorder.ticks) == handed  # judges nothing while cut off
                continue
            evaluated = set(self.recorder.ticks[-1])
            # Every cabinet that said something is evaluated at once, every one once per sweep.
            assert told <= evaluated, t
            last_evaluated.update(dict.fromkeys(evaluated, now))
            stale = {key: now - at for key, at in last_evaluated.items() if now - at >= self.sweep}
            assert not stale, (t, stale)
            # For what it evaluated, the incremental engine agrees with the reference. While
            # nothing may be resolved (settle), the reference may still hold alerts found before
            # a reconnect that the incremental engine had not come round to find.
            # A condition that became true by time alone is seen up to one sweep later; if the
            # agent went away meanwhile, nothing new is raised from its stale state (the reference,
            # judging every tick, may have raised it just before): a subset then.
            reference, incremental = self.active("reference"), self.active("incremental")
            settled = now - self.receiving >= timedelta(seconds=SETTLE_S)
            away = {c.key for c in self.fleet.snapshot()
                    if c.status in (FleetStatus.OFFLINE, FleetStatus.STOPPED)}
            for key in evaluated:
                mine, theirs = incremental.get(key, set()), reference.get(key, set())
                exact = settled and key not in away
                assert mine == theirs if exact else mine <= theirs, (t, key, settled)
            # An alert starts firing only at a tick that confirmed it (as the reference does).
            known = {c.key for c in self.fleet.snapshot()}
            for alert in self.stores["incremental"].active():
                if previous < alert.starts_at <= now and alert.cabinet_key in known:
                    assert alert.cabinet_key in evaluated, (t, dict(alert.labels))
                    assert alert.fingerprint in reference.get(alert.cabinet_key, set())
            # The cabinet the fleet does not know keeps its alert from the state file.
            assert ("own", "ghost") in incremental and ("own", "ghost") in reference
            previous = now
        assert self.history("full") == self.history("reference")

    def _note_absences(self, now: datetime) -> None:
        away = {c.key for c in self.fleet.snapshot()
                if c.status in (FleetStatus.OFFLINE, FleetStatus.STOPPED)}
        for key in away:
            spans = self.absences.setdefault(key, [])
            if not spans or spans[-1][1] is not None:
                spans.append((now, None))
        for key, spans in self.absences.items():
            if key not in away and spans[-1][1] is None:
                spans[-1] = (spans[-1][0], now)

    def check_delays(self) -> None:
        """Every alert that fired in the reference for longer than a sweep fired in the
        incremental engine too, at most a sweep later. (One that fired for less may have been
        found so late that it cleared while still pending: it never fired at all.) A slot rule's
        alert that the reference raised within a sweep before the agent went away may not be
        raised while the agent stays away — its state is stale (offline and then stopped is still
        away) — so it is owed from the agent's return on, and not at all if it never returns."""
        end = self.clock.now
        incremental = self.stores["incremental"].all()
        rules = {rule.name: rule for rule in self.full.rules}
        for alert in self.stores["reference"].all():
            owed_from = alert.active_at
            if getattr(rules.get(alert.name), "fresh_data_only", False):
                absence = next(((gone, back)
                                for gone, back in self.absences.get(alert.cabinet_key, [])
                                if alert.active_at <= gone < alert.active_at + self.sweep), None)
                if absence is not None:
                    if absence[1] is None:
                        continue  # away ever since: nothing new from its stale state
                    owed_from = absence[1]  # back: evaluated at once (it told), fresh again
            starts_at = alert.starts_at + (owed_from - alert.active_at)
            if (alert.ends_at or end) - starts_at <= self.sweep:
                continue
            assert any(a.fingerprint == alert.fingerprint
                       and a.starts_at <= starts_at + self.sweep
                       and (a.ends_at is None or a.ends_at >= owed_from)
                       for a in incremental), dict(alert.labels)


slot_state = st.sampled_from([F, F, C, E, IDLE, FAULT, U])
act = st.one_of(
    st.tuples(st.just("telemetry"),
              st.lists(slot_state, min_size=3, max_size=3),
              st.lists(st.sampled_from([None, 0.5, 18.0, 45.0]), min_size=3, max_size=3),
              st.sampled_from([DoorState.CLOSED, DoorState.CLOSED, DoorState.OPEN]),
              st.sampled_from([MainsState.ON, MainsState.ON, MainsState.OFF]),
              st.sampled_from([22.0, 23.0, 29.0, 41.0, 52.0, None]),
              st.booleans()),
    st.tuples(st.sampled_from(["offline", "stopped", "online"])),
)
events = st.lists(st.tuples(st.integers(0, 59), st.integers(0, 99), act), max_size=40)


@settings(max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events, sweep_s=st.sampled_from([3.0, 5.0, 8.0]),
       gap=st.one_of(st.none(), st.tuples(st.integers(5, 40), st.integers(1, 15))))
def test_incremental_evaluation_agrees_with_full_evaluation(
        events: list[tuple[int, int, Act]], sweep_s: float, gap: tuple[int, int] | None) -> None:
    world = World(cabinets=12, sweep_s=sweep_s, min_slice=2,
                  gap=None if gap is None else (gap[0], gap[0] + gap[1]))
    world.run(events, ticks=60)
    if gap is None:
        world.check_delays()


def _telemetry(states: list[SlotState], door: DoorState = DoorState.CLOSED) -> Act:
    powers = {C: 18.0, F: 0.5, E: None, FAULT: 0.0}
    return ("telemetry", states, [powers[s] for s in states], door, MainsState.ON, 22.0, True)


def test_change_driven_alerts_at_the_same_tick_time_driven_within_a_sweep() -> None:
    """40 cabinets, minimum slice 2, sweep 10 s: a Last Will, a slot fault and an open door are
    raised and resolved at the tick they arrive, as by the full evaluation; charging too long, the
    15:30 checks (return, morning, school hours) and silence at most 10 s later."""
    world = World(cabinets=40, sweep_s=10.0, min_slice=2)
    charging, taken, will, faulty, quiet = 5, 6, 7, 8, 9  # own/k2, pool/k3, own/k3, pool/k4, own/k4
    script: list[tuple[int, int, Act]] = []
    for t in range(0, 90, 4):  # everyone talks every 4 s (silent after 8 s) ...
        for n in range(40):
            if (n == will and 3 <= t < 20) or (n == quiet and t >= 40):
                continue  # ... except the one away with its Last Will, and the one gone quiet
            states = {charging: [C, F, F], taken: [F, E, F]}.get(n, [F, F, F])
            if n == faulty and 10 <= t < 50:
                script.append((t, n, _telemetry([F, FAULT, F], DoorState.OPEN)))
            else:
                script.append((t, n, _telemetry(states)))
    script += [(1, charging, _telemetry([C, F, F])), (2, taken, _telemetry([F, E, F])),
               (3, will, ("offline",)), (20, will, ("online",)),
               (10, faulty, _telemetry([F, FAULT, F], DoorState.OPEN)),
               (50, faulty, _telemetry([F, F, F]))]
    world.run(script, ticks=90)
    world.check_delays()

    def instances(name: str) -> dict[tuple[str, CabinetKey], Alert]:
        return {(a.name, a.cabinet_key): a for a in world.stores[name].all()}

    ref, inc = instances("reference"), instances("incremental")
    seconds = timedelta(seconds=1)
    for name, key, begins, ends in (("cabinet_offline", ("own", "k3"), 3, 20),
                                    ("ipad_not_charging", ("pool", "k4"), 10, 50),
                                    ("door_open", ("pool", "k4"), 10, 50)):
        for alert in (ref[name, key], inc[name, key]):  # change-driven: at the same ticks
            assert alert.active_at == T0 + begins * seconds, (name, alert)
            assert alert.ends_at == T0 + ends * seconds, (name, alert)
    assert inc["cabinet_offline", ("own", "k3")].annotations["return_cause"] == "network_loss"
    for name, key, begins in (("charging_too_long", ("own", "k2"), 13),  # charging since t=0
                              ("ipad_not_charged", ("own", "k2"), 30),
                              ("ipad_not_returned", ("pool", "k3"), 30),
                              ("door_open_after_hours", ("pool", "k4"), 30),
                              ("cabinet_offline", ("own", "k4"), 45)):  # last heard at 36
        assert ref[name, key].active_at == T0 + begins * seconds, name  # time-driven: ...
        assert ref[name, key].active_at <= inc[name, key].active_at, name
        assert inc[name, key].active_at <= ref[name, key].active_at + world.sweep, name


# --- what a tick costs ---------------------------------------------------------------------------

class CountingFleet:
    """A real fleet that counts what the engine asks of it."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.snapshots = 0
        self.handed_out = 0

    def snapshot(self) -> list[CabinetView]:
        self.snapshots += 1
        return self.fleet.snapshot()

    def changed_since(self, version: int) -> tuple[int, list[CabinetView]]:
        current, changed = self.fleet.changed_since(version)
        self.handed_out += len(changed)
        return current, changed


def _fleet_of(count: int, clock: Clock, site: str = "own", slots: int = 2) -> tuple[Fleet, list[Cabinet]]:
    fleet = Fleet()
    boxes = [_box(clock, site, f"c{n}", slots) for n in range(count)]
    for box in boxes:
        _apply(fleet, box.online(), clock.now)
    return fleet, boxes


@pytest.mark.parametrize(("cabinets", "min_slice", "slice_size"), [
    (300, 10, 10),  # 300 cabinets / 30 s = 10 a second
    (300, 25, 25),  # the minimum slice wins
    (1500, 1000, 1000),  # the default minimum
])
def test_a_tick_after_one_change_evaluates_that_cabinet_and_one_slice(
        cabinets: int, min_slice: int, slice_size: int) -> None:
    clock = Clock()
    fleet, boxes = _fleet_of(cabinets, clock)
    counting, recorder = CountingFleet(fleet), Recorder()
    offline = CabinetOffline(pending_s=60, silence_factor=3, min_silence_s=3600)
    engine = AlertEngine([offline, recorder], StoredState.in_memory(), counting, clock, org=ORG,
                         sweep=timedelta(seconds=30), min_slice=min_slice)
    engine.tick()  # the first tick reads and judges the whole fleet once
    assert len(recorder.ticks[-1]) == cabinets and counting.handed_out == cabinets
    covered: set[CabinetKey] = set()
    for t in range(1, 31):
        clock.now = T0 + timedelta(seconds=t)
        box = boxes[(t * 37) % cabinets]
        _apply(fleet, box.telemetry([F, F], [0.5, 0.5]), clock.now)
        handed = counting.handed_out
        engine.tick()
        evaluated = recorder.ticks[-1]
        assert counting.handed_out - handed == 1  # the change feed hands out one cabinet
        assert (box.site, box.cabinet) in evaluated
        assert slice_size <= len(evaluated) <= slice_size + 1
        assert (engine.last.fleet, engine.last.evaluated, engine.last.changed) == (
            cabinets, len(evaluated), 1)
        covered.update(evaluated)
    assert counting.snapshots == 0  # never the whole fleet
    assert len(covered) == cabinets  # one sweep covered it


def test_a_fleet_up_to_the_minimum_slice_is_evaluated_whole_at_every_tick() -> None:
    clock = Clock()
    fleet, _ = _fleet_of(50, clock)
    recorder = Recorder()
    engine = AlertEngine([recorder], StoredState.in_memory(), fleet, clock, min_slice=50)
    for t in range(5):
        clock.now = T0 + timedelta(seconds=t)
        engine.tick()
    assert [len(keys) for keys in recorder.ticks] == [50] * 5
    assert recorder.ticks[-1] == [c.key for c in fleet.snapshot()]  # in the fleet's order, as before


def _door_world(cabinets: int, clock: Clock, door_pending_s: float, sweep_s: float
                ) -> tuple[Fleet, list[Cabinet], StoredState, AlertEngine]:
    fleet, boxes = _fleet_of(cabinets, clock, site="pool", slots=1)
    settings_ = RulesSettings.model_validate({"door_open_after_hours": {"pending_s": door_pending_s},
                                              "door_open": {"enabled": False}})
    store = StoredState.in_memory()
    engine = AlertEngine(build_rules(settings_, CabinetOffline(pending_s=60, silence_factor=3,
                                                               min_silence_s=36_000)),
                         store, fleet, clock, org=ORG,
                         calendars=Calendars(ORG.zone, ORG.state, [HOLIDAYS_ICS]),
                         sweep=timedelta(seconds=sweep_s), min_slice=1)
    return fleet, boxes, store, engine


def test_alerts_of_cabinets_not_evaluated_stay_until_their_turn() -> None:
    """20 doors open after hours; school begins at 07:30. The full evaluation would resolve all 20
    at 07:30:00; with a sweep of 10 s two a second are resolved, each at its turn."""
    clock = Clock(datetime(2026, 11, 2, 6, 29, 50, tzinfo=UTC))  # 07:29:50 local
    fleet, boxes, store, engine = _door_world(20, clock, door_pending_s=0, sweep_s=10)
    for box in boxes:
        _apply(fleet, box.telemetry([F], [0.5], door=DoorState.OPEN), clock.now)
    engine.tick()
    assert len(store.active()) == 20
    resolved = []
    for _ in range(20):
        clock.now += timedelta(seconds=1)
        engine.tick()
        resolved.append(20 - len(store.active()))
    school = datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    assert resolved[9] == 2  # 07:30:00: the two of the slice ...
    assert resolved[-1] == 20  # ... and the rest within the sweep
    ends = sorted(a.ends_at for a in store.all() if a.ends_at)
    assert ends[0] == school and ends[-1] <= school + timedelta(seconds=10)


def test_an_alert_whose_condition_ends_by_time_is_dropped_before_it_fires() -> None:
    """A door open after hours at 07:28 with 180 s pending would fire at 07:31; school begins at
    07:30. The sweep (300 cabinets, one a second) comes back to it only at 07:33; the check of the
    cabinets whose alerts fire by the next tick drops it at 07:31:00, before it fires."""
    clock = Clock(datetime(2026, 11, 2, 6, 28, tzinfo=UTC))  # 07:28 local
    fleet, boxes, store, engine = _door_world(300, clock, door_pending_s=180, sweep_s=300)
    engine.tick()
    _apply(fleet, boxes[7].telemetry([F], [0.5], door=DoorState.OPEN), clock.now)
    states = []
    for _ in range(400):
        clock.now += timedelta(seconds=1)
        engine.tick()
        states += [a.state(clock.now) for a in store.all()]
    assert AlertState.PENDING in states
    assert AlertState.FIRING not in states and AlertState.RESOLVED not in states
    assert store.all() == []


def test_temperature_rise_keeps_the_history_of_cabinets_it_does_not_see_at_every_tick() -> None:
    clock = Clock()
    fleet, boxes = _fleet_of(2, clock)
    rule = TemperatureRise(TemperatureRiseSettings(rise_c=5, window_s=600))
    calendars = Calendars(ORG.zone, ORG.state, [])

    def judge(*names: str) -> list[Finding]:
        cabinets = [c for c in fleet.snapshot() if c.cabinet in names]
        return rule.evaluate(RuleContext(cabinets, clock.now, T0, ORG, calendars))

    _apply(fleet, boxes[0].telemetry(temperature=22.0), clock.now)
    assert judge("c0", "c1") == []
    clock.now += timedelta(seconds=60)
    assert judge("c1") == []  # c0 not handed to the rule this time: its history stays
    clock.now += timedelta(seconds=60)
    _apply(fleet, boxes[0].telemetry(temperature=28.0), clock.now)
    (finding,) = judge("c0")
    assert (finding.annotations["from_c"], finding.annotations["to_c"]) == ("22.0", "28.0")


def test_the_engine_needs_a_fleet_and_a_sweep() -> None:
    with pytest.raises(TypeError, match="changed_since"):
        AlertEngine([], StoredState.in_memory(), object(), Clock())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sweep"):
        AlertEngine([], StoredState.in_memory(), Fleet(), Clock(), sweep=timedelta(0))


# --- what the rules share ------------------------------------------------------------------------

@given(st.lists(st.tuples(st.sampled_from(list(SlotState)),
                          st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
                          st.one_of(st.none(), st.sampled_from(list(Certainty))),
                          st.sampled_from([None, "overpower", "too_long", "frozen", "no_topup"])),
                max_size=32))
def test_slot_groups_answer_what_the_rules_asked_of_every_slot(
        slots: list[tuple[SlotState, float | None, Certainty | None, str | None]]) -> None:
    views = tuple(SlotView(n + 1, None, state, power, None, certainty, None, None, fault)
                  for n, (state, power, certainty, fault) in enumerate(slots))
    groups = SlotGroups.of(views)
    judged = [s.certainty is not Certainty.CANNOT_TELL for s in views]
    assert groups.charging == tuple(i for i, s in enumerate(views) if s.state is C)
    charge_fault = [s.state is FAULT and s.fault not in ("too_long", "overpower") for s in views]
    assert groups.idle_or_fault == tuple(i for i, s in enumerate(views)
                                         if charge_fault[i] or (s.state is IDLE and judged[i]))
    assert groups.too_long == tuple(i for i, s in enumerate(views)
                                    if s.state is FAULT and s.fault == "too_long")
    assert groups.empty == tuple(i for i, s in enumerate(views) if s.state is E and judged[i])
    assert groups.unjudgeable == tuple(i for i, s in enumerate(views)
                                       if s.state is U and s.power_w is not None)
    for rating in (0.0, 25.0, 30.0):  # SlotOverpower looks at a cabinet's slots only if ...
        above = groups.max_power_w is not None and not groups.max_power_w <= rating
        assert above == any(s.power_w is not None and not s.power_w <= rating for s in views)


def test_the_cache_answers_as_the_organisation() -> None:
    cache = RuleCache(ORG)
    for site in ("pool", "own", "nowhere"):
        assert cache.school(site) == ORG.school(site)
        for cabinet in ("k0", "k1"):
            assert cache.cabinet_config(site, cabinet) == ORG.cabinet(site, cabinet)
    clock = Clock()
    fleet = tagged_fleet(ORG)
    for site, cabinet in (("pool", "k0"), ("pool", "k1"), ("own", "k0")):
        _apply(fleet, _box(clock, site, cabinet).online(), clock.now)
    for view in fleet.snapshot():
        expected = tuple(slot.asset_tag for slot in view.slots)
        assert cache.expected_tags(view) == expected
        assert cache.expected_tags(view) is cache.expected_tags(view)  # once per record
    configured = fleet.get("pool", "k0")
    assert configured is not None
    assert cache.expected_tags(configured) == ("P-1", "P-2", "P-3")  # the organisation's win
