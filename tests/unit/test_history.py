"""The durable history and the school report against a scripted school week whose truth is known:
which iPads were charged when lessons started, which were not back at the return check, how many
sessions and how much energy, how long the cabinet was online. The week runs through the real
fleet, the history recorder (from the fleet's change feed), the roll-ups and the report; the
figures must be exactly the script's. Also: a restart writes nothing that did not change, and the
store prunes what is older than the retention while keeping each slot's current state."""

from __future__ import annotations

import argparse
import io
import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    ChargeSession,
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    SessionEnd,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
)
from server.battery import BatteryAgeing
from server.history import HistoryRecorder, slot_changes_between
from server.history.source import ReportSource
from server.inventory import Place
from server.org import Organisation
from server.schoolcal import Calendars
from server.sessions import SessionRecorder
from server.store import open_store
from server.store.schema import slot_changes
from tests.support.alert_timeline import HOLIDAYS_ICS
from tests.support.explore import examples
from tests.support.inventory import register_with
from tests.support.store import store_at

pytestmark = pytest.mark.store

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = date(2026, 11, 16)  # a school week in the Saarland: no holiday Monday to Friday
ORG = Organisation.model_validate({
    "district": "Kreis", "state": "SL", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nordheim"}],
    "schools": [{"site": "gs-park", "name": "Grundschule am Park", "municipality": "nord",
                 "hours": "07:30-15:30", "return_check": "16:30"}],
    "cabinets": [{"school": "gs-park", "id": "k1", "name": "Raum 12",
                  "slots": {1: "P-1", 2: "P-2", 3: "P-3", 4: "P-4"}}],
})
C, E, F, U = SlotState.CHARGING, SlotState.EMPTY, SlotState.CHARGED, SlotState.UNKNOWN
# The script: per school day, the states at 06:00 (after the night), at 09:00 (out in class) and
# at 15:00 (back). Monday: all ready, all back. Tuesday: slot 4 still charging at 07:30 (not
# ready). Wednesday: slot 2 not back. Thursday: slot 2 back late (after the check), slot 3's
# meter unknown all day (judged neither way). Friday: slots 1 and 4 not back.
WEEK = [
    ([F, F, F, F], [E, E, E, E], [C, C, C, C]),
    ([F, F, F, C], [E, E, E, E], [C, C, C, C]),
    ([F, F, F, F], [E, E, E, E], [C, E, C, C]),
    ([F, E, U, F], [E, E, U, E], [C, E, U, C]),
    ([F, F, F, F], [E, E, E, E], [E, C, C, E]),
]
TRUTH_READY = [(4, 4), (3, 4), (4, 4), (2, 3), (4, 4)]  # (ready, judged) at 07:30 per day
TRUTH_NOT_BACK = [(0, 4), (0, 4), (1, 4), (1, 3), (2, 4)]  # (not back, judged) at 16:30


def _local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=BERLIN).astimezone(UTC)


class Week:
    def __init__(self) -> None:
        self.store = open_store(None)
        self.now = _local(MONDAY, 5)
        register = register_with(ORG)
        self.inventory = register.inventory
        self.recorder = HistoryRecorder(self.store, lambda: self.now)
        self.fleet = register.fleet(observer=self.recorder.see)
        self.battery = BatteryAgeing()
        self.sessions = SessionRecorder(self.store, self.battery)
        self.seq = 0

    def _env(self) -> dict[str, object]:
        self.seq += 1
        return {"v": 1, "site": "gs-park", "cabinet": "k1", "boot_id": "b" * 32, "seq": self.seq,
                "ts": self.now, "clock_synced": True}

    def apply(self, message: object) -> None:
        self.fleet.apply(message, self.now)  # type: ignore[arg-type]
        self.recorder.flush()

    def start(self) -> None:
        self.apply(StatusMessage(**self._env(), status=AgentStatus.ONLINE))  # type: ignore[arg-type]
        self.apply(BirthMessage(**self._env(), agent_version="0.2", config_hash="00000000",  # type: ignore[arg-type]
                                cabinet_model="m", slot_count=4, poll_interval_s=1.0,
                                telemetry_interval_s=10.0, slots=[SlotInfo(slot=n) for n in range(1, 5)]))

    def states(self, at: datetime, states: list[SlotState]) -> None:
        self.now = at
        self.apply(StateMessage(**self._env(), door=DoorState.CLOSED, mains=MainsState.ON,  # type: ignore[arg-type]
                                temperature_c=20.0, devices=[], slots=[
                                    SlotSnapshot(slot=n, state=s, power_w=0.0, since=at)
                                    for n, s in enumerate(states, 1)]))

    def session(self, at: datetime, slot: int, energy_wh: float) -> None:
        self.now = at
        self.sessions.record(EventMessage(**self._env(), event=EventKind.SESSION_ENDED, slot=slot,  # type: ignore[arg-type]
                                          session=ChargeSession(
                                              slot=slot, asset_tag=f"P-{slot}",
                                              started_at=at - timedelta(hours=2), ended_at=at,
                                              duration_s=7200.0, energy_wh=energy_wh, peak_w=20.0,
                                              end=SessionEnd.FULL)))

    def run(self) -> None:
        self.start()
        for offset, (night, lesson, back) in enumerate(WEEK):
            day = MONDAY + timedelta(days=offset)
            self.states(_local(day, 6), night)
            self.states(_local(day, 9), lesson)
            self.states(_local(day, 15), back)
            self.session(_local(day, 23), 1, 20.0)  # one full charge a night in slot 1
        self.now = _local(MONDAY + timedelta(days=7), 9)

    def report_source(self) -> ReportSource:
        calendars = Calendars(ORG.zone, ORG.state, [HOLIDAYS_ICS])
        return ReportSource(self.store, ORG, calendars, self.battery, self.inventory, 0.30,
                            lambda: self.now)


@pytest.fixture(scope="module")
def week() -> Week:
    world = Week()
    world.run()
    return world


def test_the_report_says_what_the_week_was(week: Week) -> None:
    friday = MONDAY + timedelta(days=4)
    report = week.report_source().report(["gs-park"], MONDAY, friday + timedelta(days=2))
    (school,) = report.schools
    days = school.series()
    assert [d.day for d in days] == [MONDAY + timedelta(days=n) for n in range(7)]
    assert [d.school_day for d in days] == [True] * 5 + [False] * 2
    assert [(d.ready, d.ready_known) for d in days[:5]] == TRUTH_READY
    assert [(d.not_returned, d.return_known) for d in days[:5]] == TRUTH_NOT_BACK
    assert all(d.ready_known == d.return_known == 0 for d in days[5:])  # the weekend: not asked
    assert school.school_days == 5
    assert school.readiness == pytest.approx(17 / 19)
    assert school.not_returned == 4
    assert school.sessions == 5 and school.energy_kwh == pytest.approx(0.1)
    assert report.cost_eur(school) == pytest.approx(0.03)
    assert school.availability == pytest.approx(1.0)  # online from Monday 05:00 on
    assert report.total.readiness == school.readiness  # one school: the total is the school
    assert [m.name for m in report.municipalities] == ["Nordheim"]


def test_the_history_survives_a_new_recorder_and_writes_nothing_twice(week: Week) -> None:
    with week.store.connect() as db:
        before = db.scalar(select(func.count()).select_from(slot_changes))
    again = HistoryRecorder(week.store, lambda: week.now)  # a restarted collector
    view = week.fleet.get("gs-park", "k1")
    assert view is not None
    assert again.observe([view]) == 0
    changes = slot_changes_between(week.store, "gs-park", "k1", 2, _local(MONDAY + timedelta(2), 0),
                                   _local(MONDAY + timedelta(3), 0))
    assert [(c.state, c.at) for c in changes] == [
        (C, _local(MONDAY + timedelta(1), 15)),  # the state Wednesday began in
        (F, _local(MONDAY + timedelta(2), 6)), (E, _local(MONDAY + timedelta(2), 9))]
    with week.store.connect() as db:
        assert db.scalar(select(func.count()).select_from(slot_changes)) == before


def test_an_ipad_moved_to_another_slot_is_recorded_under_its_tag_there() -> None:
    world = Week()
    world.start()
    world.states(_local(MONDAY, 6), [F, F, F, F])
    world.inventory.place("P-1", Place("gs-park", "k1", 4), "tech")  # re-tags the fleet's record
    world.recorder.flush()
    latest = {c.slot: c.asset_tag for c in (slot_changes_between(
        world.store, "gs-park", "k1", n, world.now, world.now + timedelta(days=1))[-1]
        for n in (1, 4))}
    assert latest == {1: None, 4: "P-1"}


def test_changes_seen_while_the_store_is_away_are_written_when_it_is_back() -> None:
    world = Week()
    world.start()
    world.recorder.flush()
    with world.store.begin() as db:  # the store refuses the writes (a database restart)
        db.execute(text("ALTER TABLE slot_changes RENAME TO slot_changes_away"))
    with pytest.raises(SQLAlchemyError):  # the fleet changes, the flush after it fails
        world.states(_local(MONDAY, 6), [F, E, C, F])
    with world.store.begin() as db:
        db.execute(text("ALTER TABLE slot_changes_away RENAME TO slot_changes"))
    assert world.recorder.flush() > 0  # nothing seen meanwhile was dropped
    latest = [slot_changes_between(world.store, "gs-park", "k1", n, world.now - timedelta(days=1),
                                   world.now + timedelta(days=1))[-1].state for n in (1, 2, 3, 4)]
    assert latest == [F, E, C, F]


def test_pruning_keeps_each_slot_s_current_state(week: Week) -> None:
    world = Week()
    store, recorder = world.store, world.recorder
    world.start()
    world.states(_local(MONDAY, 6), [F, F, F, F])
    world.states(_local(MONDAY, 9), [E, F, F, F])
    world.now = _local(MONDAY + timedelta(days=800), 9)
    # gone: slot 1's "charged" and the cabinet's first row (door and mains not known yet); each
    # slot's newest stays, however old
    assert recorder.prune(keep_days=730) == 2
    with store.connect() as db:
        rows = db.execute(select(slot_changes.c.slot, slot_changes.c.state)
                          .order_by(slot_changes.c.slot)).all()
    assert [tuple(r) for r in rows] == [(1, "empty"), (2, "charged"), (3, "charged"), (4, "charged")]


def test_an_ipad_s_page_shows_its_sessions_and_its_battery_across_slots(week: Week) -> None:
    """Its charges wherever it lived, and the battery's trend once there are enough of them."""
    import asyncio

    import httpx

    from server.alerts.state import StoredState
    from server.api import ApiSources, create_app
    from server.assets import AssetRegister
    from server.auth import Auth, Role, User, UserStore
    from server.ingest import MqttStats
    from server.pipeline import IngestStats
    from server.tsdb.base import SinkHealth, SinkStats
    from server.web import Dashboard, install_dashboard

    for n in range(12):  # twelve more full charges of P-1, the last ones with less taper energy
        at = _local(MONDAY + timedelta(days=20 + n), 23)
        week.now = at
        week.sessions.record(EventMessage(
            v=1, site="gs-park", cabinet="k1", boot_id="d" * 32, seq=1000 + n, ts=at,  # type: ignore[arg-type]
            clock_synced=True, event=EventKind.SESSION_ENDED, slot=2,
            session=ChargeSession(slot=2, asset_tag="P-1", started_at=at - timedelta(hours=2),
                                  ended_at=at, duration_s=7200.0, energy_wh=20.0, peak_w=20.0,
                                  end=SessionEnd.FULL, taper_wh=8.0 if n < 6 else 5.0)))
    store = UserStore(open_store(None))
    store.add_user(User("admin", Role.ADMIN), "a-long-password", week.now)
    state = StoredState.in_memory()
    sources = ApiSources(fleet=week.fleet, alerts=state, state=state, clock=lambda: week.now,
                         org=ORG, ingest_stats=lambda **_: IngestStats(0, 0, {}),
                         mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK),
                         auth=Auth(store, lambda: week.now), assets=AssetRegister(week.inventory))
    app = create_app(sources)
    install_dashboard(app, Dashboard(sources, week.sessions, store=week.store))
    token = store.create_token("admin", "t", week.now)

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            return await client.get("/inventory/ipad?tag=P-1")

    page = asyncio.run(get()).text
    assert page.count("Grundschule am Park · Raum 12 · Fach 1") >= 5  # the week's nightly charges
    assert "Grundschule am Park · Raum 12 · Fach 2" in page  # and where it charged later
    assert "62 % der anfänglichen Ladeenergie, nach 12 Vollladungen" in page  # 5 of 8 Wh
    assert "verschlissen, zum Austausch vormerken" in page
    assert '<svg class="battery"' in page and "anfangs 8 Wh" in page


def test_the_history_from_before_is_filled_from_the_event_log_once() -> None:
    from server.events import EventLog
    from server.history.backfill import backfill_from_events

    world = Week()  # the store's own history begins on MONDAY
    log = EventLog(world.store)
    seq = iter(range(1, 100))

    def event(at: datetime, kind: EventKind, **fields: object) -> None:
        log.record(EventMessage(v=1, site="gs-park", cabinet="k1", boot_id="e" * 32,  # type: ignore[arg-type]
                                seq=next(seq), ts=at, clock_synced=True, event=kind, **fields), at)

    day = MONDAY - timedelta(days=7)  # the week before the store kept a history
    event(_local(day, 6), EventKind.SLOT_CHANGED, slot=1, old="charging", new="charged")
    event(_local(day, 9), EventKind.SLOT_CHANGED, slot=1, old="charged", new="empty")
    event(_local(day, 9, 1), EventKind.DOOR_CHANGED, old="closed", new="open")
    event(_local(day, 15), EventKind.SLOT_CHANGED, slot=1, old="empty", new="charging")
    event(_local(day, 16), EventKind.SLOT_CHANGED, slot=9, old="empty", new="no such state")
    log.close()
    world.start()
    world.states(_local(MONDAY, 6), [F, F, F, F])

    def backfill() -> tuple[int, int, int]:
        report = backfill_from_events(
            world.store, lambda site, cabinet: world.inventory.snapshot()
            .by_cabinet.get((site, cabinet), {}), lambda at: at.astimezone(BERLIN).date())
        return report.slot_rows, report.cabinet_rows, report.skipped

    assert backfill() == (3, 1, 1)
    changes = slot_changes_between(world.store, "gs-park", "k1", 1, _local(day, 0),
                                   _local(MONDAY, 23))
    assert [(c.state, c.asset_tag) for c in changes] == [
        (F, "P-1"), (E, "P-1"), (C, "P-1"), (F, "P-1")]  # then the store's own Monday
    assert backfill() == (0, 0, 5)  # all older rows are there now: nothing twice
    report = world.report_source().report(["gs-park"], day, day)
    (school,) = report.schools
    assert (school.ready, school.ready_known) == (1, 1)  # charged at 07:30 that day, per the log
    assert (school.not_returned, school.sessions) == (0, 0)


def test_the_backfill_command_takes_an_older_event_log_over_first(tmp_path: Path) -> None:
    """``cabinet-server history backfill`` on a state dir an older collector left: its
    events.sqlite is taken over into the store (as the collector's start would), then read."""
    from server.config import load_server_settings
    from server.history.cli import run_history_command
    from tests.unit.test_events import write_old_event_log

    state = tmp_path / "state"
    state.mkdir()
    write_old_event_log(state)  # a slot's change on 1 December, and a device's fault
    config = tmp_path / "server.toml"
    config.write_text(f'[state]\ndir = "{state}"\n')
    out = io.StringIO()
    assert run_history_command(argparse.Namespace(), load_server_settings(config), out) == 0
    assert "1 slot change(s), 0 door/mains change(s); 0 event(s) not taken" in out.getvalue()
    assert (state / "events.sqlite.imported").exists() and not (state / "events.sqlite").exists()
    changes = slot_changes_between(store_at(state), "gs", "c1", 4, datetime(2026, 12, 1, tzinfo=UTC),
                                   datetime(2026, 12, 2, tzinfo=UTC))
    assert [(c.at, c.state) for c in changes] == [
        (datetime(2026, 12, 1, 7, 15, tzinfo=UTC), SlotState.CHARGED)]


@given(seed=st.integers(0, 2**32 - 1), weeks=st.integers(1, 6))
@settings(max_examples=examples(6), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_simulated_term_reports_exactly_its_truth(seed: int, weeks: int) -> None:
    """A drawn term from the last week of November into the Christmas holidays: each slot each
    day charged, charging, empty or unknown after the night, out in class or not, back or not.
    The report's readiness, not-returned and school days per day are the script's, whatever the
    draw; holidays and weekends are not asked."""
    rng = random.Random(seed)
    start = date(2026, 11, 30)
    calendar = Calendars(ORG.zone, ORG.state, [HOLIDAYS_ICS]).for_site("gs-park")
    world = Week()
    world.start()
    truth: dict[date, tuple[int, int, int, int]] = {}
    for offset in range(weeks * 7):
        day = start + timedelta(days=offset)
        night = [rng.choice([F, F, F, C, E, U]) for _ in range(4)]
        lesson = [rng.choice([E, E, s]) for s in night]
        back = [rng.choice([C, C, F, E, U]) for _ in range(4)]
        world.states(_local(day, 6), night)
        world.states(_local(day, 9), lesson)
        world.states(_local(day, 15), back)
        if calendar.is_school_day(day):
            judged = [s for s in night if s is not U]
            home = [s for s in back if s is not U]
            truth[day] = (sum(s is F for s in judged), len(judged),
                          sum(s is E for s in home), len(home))
        else:
            truth[day] = (0, 0, 0, 0)
    world.now = _local(start + timedelta(days=weeks * 7 + 1), 9)
    last = start + timedelta(days=weeks * 7 - 1)
    (school,) = world.report_source().report(["gs-park"], start, last).schools
    got = {d.day: (d.ready, d.ready_known, d.not_returned, d.return_known) for d in school.series()}
    assert got == truth
    assert school.school_days == sum(calendar.is_school_day(d) for d in truth)
