"""The dashboard at fleet scale: the slot history fed by the fleet's change feed within a memory
budget, and the overview from kept counts — equal to computing it from scratch."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.responses import StreamingResponse

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Certainty,
    DoorState,
    MainsState,
    Sensing,
    SlotInfo,
    SlotState,
    StatusMessage,
    TelemetryMessage,
)
from server.alerts.state import StoredState
from server.api import ApiSources
from server.auth import Auth, Scope, UserStore
from server.fleet import CabinetKey, CabinetView, Fleet, SlotView
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard
from server.web import overview as overview_module
from server.web.data import _csv_stream
from server.web.history import MIN_SAMPLES, MIN_TRANSITIONS, Sample, SlotHistory, Transition
from server.web.overview import OrgIndex, OverviewCache, build_overview

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BOOT = "e" * 32
S = SlotState


class Feed:
    """Real protocol messages folded into a real Fleet, with a growing seq per cabinet."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.seq: Counter[CabinetKey] = Counter()

    def _env(self, site: str, cabinet: str, at: datetime) -> dict[str, object]:
        self.seq[(site, cabinet)] += 1
        return {"v": 1, "site": site, "cabinet": cabinet, "boot_id": BOOT,
                "seq": self.seq[(site, cabinet)], "ts": at, "clock_synced": True}

    def status(self, site: str, cabinet: str, status: AgentStatus, at: datetime = T0) -> None:
        self.fleet.apply(StatusMessage(**self._env(site, cabinet, at), status=status), at)  # type: ignore[arg-type]

    def birth(self, site: str, cabinet: str, size: int, at: datetime = T0,
              sensing: Sensing | None = None) -> None:
        self.fleet.apply(BirthMessage(**self._env(site, cabinet, at), agent_version="0.1",  # type: ignore[arg-type]
                                      config_hash="00000000", cabinet_model="m", slot_count=size,
                                      slots=[SlotInfo(slot=i + 1, asset_tag=f"{cabinet}-{i}")
                                             for i in range(size)],
                                      poll_interval_s=1.0, telemetry_interval_s=10.0,
                                      sensing=sensing), at)

    def online(self, site: str, cabinet: str, size: int, at: datetime = T0,
               sensing: Sensing | None = None) -> None:
        self.status(site, cabinet, AgentStatus.ONLINE, at)
        self.birth(site, cabinet, size, at, sensing)

    def telemetry(self, site: str, cabinet: str, states: Sequence[SlotState],
                  powers: Sequence[float | None] | None = None, at: datetime = T0,
                  certainty: Sequence[Certainty] | None = None) -> None:
        self.fleet.apply(TelemetryMessage(
            **self._env(site, cabinet, at), states=list(states),  # type: ignore[arg-type]
            certainty=list(certainty) if certainty is not None else None,
            power_w=list(powers) if powers is not None else [10.0] * len(states),
            temperature_c=21.0, door=DoorState.CLOSED, mains=MainsState.ON, devices=[]), at)


def _dashboard(fleet: Fleet, clock: list[datetime], org: Organisation | None = None,
               history: SlotHistory | None = None) -> Dashboard:
    sources = ApiSources(fleet=fleet, alerts=StoredState.in_memory(), clock=lambda: clock[0],
                         org=org or Organisation(),
                         ingest_stats=lambda **_: IngestStats(0, 0, {}),
                         mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(UserStore(open_store(None))))
    return Dashboard(sources, history=history or SlotHistory())


class SpyHistory(SlotHistory):
    def __init__(self) -> None:
        super().__init__()
        self.given: list[list[str]] = []

    def observe(self, cabinets: Iterable[CabinetView], now: datetime) -> int:
        cabinets = list(cabinets)
        self.given.append(sorted(c.cabinet for c in cabinets))
        return super().observe(cabinets, now)


# -- the slot history ------------------------------------------------------------------------------

def test_the_sampler_records_only_cabinets_that_changed() -> None:
    fleet, clock = Fleet(), [T0]
    feed = Feed(fleet)
    for cabinet in ("k1", "k2"):
        feed.online("gs", cabinet, 2)
        feed.telemetry("gs", cabinet, [S.CHARGING, S.EMPTY], [15.0, 0.0])
    dash = _dashboard(fleet, clock, history=SpyHistory())
    spy = dash.history
    assert isinstance(spy, SpyHistory)
    assert dash.sample() == 2
    clock[0] = T0 + timedelta(seconds=5)
    assert dash.sample() == 0  # nothing reported: nothing handed over, nothing recorded
    feed.telemetry("gs", "k1", [S.CHARGED, S.EMPTY], [1.0, 0.0], at=T0 + timedelta(seconds=7))
    clock[0] = T0 + timedelta(seconds=10)
    assert dash.sample() == 1
    assert spy.given == [["k1", "k2"], [], ["k1"]]
    assert [s.power_w for s in spy.samples("gs", "k1", 1)] == [15.0, 1.0]
    assert [s.at for s in spy.samples("gs", "k2", 1)] == [T0]  # k2 did not change: not re-recorded
    assert [t.state for t in spy.transitions("gs", "k1", 1)] == [S.CHARGING, S.CHARGED]
    assert [t.state for t in spy.transitions("gs", "k2", 1)] == [S.CHARGING]


def test_transitions_at_the_agents_since_and_power_in_tenths_of_a_watt() -> None:
    fleet = Fleet()
    feed = Feed(fleet)
    feed.online("gs", "k1", 3)
    history = SlotHistory(keep=timedelta(minutes=1))
    moments = [T0 + timedelta(seconds=s) for s in (0, 30, 150)]
    for at, (state, power) in zip(moments, [(S.CHARGING, 15.04), (S.CHARGING, 14.96),
                                            (S.CHARGED, None)], strict=True):
        feed.telemetry("gs", "k1", [state, S.EMPTY, S.UNKNOWN], [power, 0.0, None], at=at)
        history.observe([fleet.get("gs", "k1")], at + timedelta(seconds=1))  # type: ignore[list-item]
    assert history.transitions("gs", "k1", 1) == [Transition(moments[0], S.CHARGING),
                                                  Transition(moments[2], S.CHARGED)]
    assert history.transitions("gs", "k1", 2) == [Transition(moments[0], S.EMPTY)]
    # the newest reading and those within `keep` (1 min) before it; 150 s minus 30 s is older
    assert history.samples("gs", "k1", 1) == [Sample(moments[2] + timedelta(seconds=1), None)]
    history_all = SlotHistory()
    for at in moments:
        feed.telemetry("gs", "k1", [S.CHARGING] * 3, [15.04, 14.96, -0.3], at=at)
        history_all.observe([fleet.get("gs", "k1")], at)  # type: ignore[list-item]
    assert [s.power_w for s in history_all.samples("gs", "k1", 1)] == [15.0] * 3
    assert [s.power_w for s in history_all.samples("gs", "k1", 2)] == [15.0] * 3
    assert [s.power_w for s in history_all.samples("gs", "k1", 3)] == [-0.3] * 3
    assert history_all.samples("gs", "k1", 4) == [] and history_all.samples("gs", "k9", 1) == []


def _view(cabinet: str, slots: Sequence[SlotView], site: str = "gs") -> CabinetView:
    return CabinetView(site, cabinet, T0, T0, T0, slots=tuple(slots))


def test_odd_readings_and_odd_slot_numbers() -> None:
    history = SlotHistory()
    slots = [SlotView(2, None, S.CHARGING, math.nan, T0), SlotView(5, None, S.FAULT, 1e6, T0),
             SlotView(9, None, S.EMPTY, -1e6, T0)]
    history.observe([_view("k1", slots)], T0)
    assert [history.samples("gs", "k1", n)[0].power_w for n in (2, 5, 9)] == [None, 3276.7, -3276.7]
    assert history.samples("gs", "k1", 1) == [] and history.transitions("gs", "k1", 3) == []
    assert history.transitions("gs", "k1", 5) == [Transition(T0, S.FAULT)]
    # a new birth with other slots: the cabinet's history starts afresh
    history.observe([_view("k1", [SlotView(1, None, S.EMPTY, 0.0, T0)])], T0 + timedelta(seconds=5))
    assert history.samples("gs", "k1", 5) == []
    assert len(history.samples("gs", "k1", 1)) == 1
    assert history.usage().slots == 1


def test_a_slot_keeps_at_most_depth_readings_the_newest() -> None:
    history = SlotHistory(max_points=40)  # 2 slots: 20 readings each
    assert history.limits[0] == 1440  # nothing known yet
    times = [T0 + timedelta(seconds=5 * n) for n in range(50)]
    for n, at in enumerate(times):
        history.observe([_view("k1", [SlotView(1, None, S.CHARGING, float(n), T0),
                                      SlotView(2, None, S.EMPTY, 0.0, T0)])], at)
    assert history.limits[0] == 20
    samples = history.samples("gs", "k1", 1)
    assert [s.at for s in samples] == times[-20:]
    assert [s.power_w for s in samples] == [float(n) for n in range(30, 50)]
    assert history.usage().samples == 40


def test_the_budget_holds_while_the_fleet_grows() -> None:
    max_points = 20_000
    history = SlotHistory(max_points=max_points)
    known: list[str] = []
    for round_no in range(40):
        known += [f"k{len(known) + i}" for i in range(5)]  # 5 cabinets × 4 slots more a round
        at = T0 + timedelta(seconds=5 * round_no)
        history.observe([_view(c, [SlotView(n, None, S.CHARGING, 9.0, T0) for n in (1, 2, 3, 4)])
                         for c in known], at)
        usage = history.usage()
        assert usage.slots == 4 * len(known)
        assert usage.depth == max(MIN_SAMPLES, min(1440, max_points // usage.slots))
        # every ring is within a third of the depth at once, and within it after its next write
        assert usage.samples <= max_points * 4 // 3
        assert usage.samples <= usage.depth * usage.slots
    assert history.usage().depth == 25  # 800 slots
    assert len(history.samples("gs", "k0", 1)) == 25


def test_a_fleet_larger_than_the_budget_keeps_the_minimum() -> None:
    history = SlotHistory(max_points=100, max_transitions=10)
    views = [_view(f"k{c}", [SlotView(n, None, S.CHARGED, 1.0, T0) for n in range(1, 33)])
             for c in range(50)]
    for step in range(20):
        history.observe(views, T0 + timedelta(seconds=step))
    usage = history.usage()
    assert (usage.depth, usage.transitions_per_slot) == (MIN_SAMPLES, MIN_TRANSITIONS)
    assert usage.samples == 50 * 32 * MIN_SAMPLES
    assert usage.transitions == 50 * 32  # one each: the state they were first seen in


def test_trimming_keeps_the_current_state_of_every_slot() -> None:
    history = SlotHistory(max_transitions=1)  # 3 changes per slot: 9 for this cabinet
    flapping = [S.CHARGING, S.CHARGED]
    for step in range(50):
        at = T0 + timedelta(seconds=step)
        history.observe([_view("k1", [SlotView(1, None, flapping[step % 2], 1.0, at),
                                      SlotView(2, None, S.EMPTY, 0.0, T0),
                                      SlotView(3, None, S.FAULT, 0.0, T0)])], at)
    assert history.usage().transitions <= 3 * MIN_TRANSITIONS
    slot1 = history.transitions("gs", "k1", 1)
    assert slot1[-1] == Transition(T0 + timedelta(seconds=49), S.CHARGED)
    assert [t.at for t in slot1] == sorted(t.at for t in slot1)
    assert history.transitions("gs", "k1", 2) == [Transition(T0, S.EMPTY)]
    assert history.transitions("gs", "k1", 3) == [Transition(T0, S.FAULT)]


# -- the overview from kept counts -------------------------------------------------------------------

STATES = list(SlotState)
CERTAINTIES = list(Certainty)
SENSINGS = [None, Sensing(slot_power=True, presence=False, door=True, evidence_window_s=432000.0),
            Sensing(slot_power=True, presence=True, door=True),
            Sensing(slot_power=False, presence=False, door=True)]


def _random_world(rng: random.Random) -> tuple[Organisation, list[str]]:
    municipalities = [f"m{i}" for i in range(rng.randint(1, 4))]
    schools = [f"s{i}" for i in range(rng.randint(1, 12))]
    org = Organisation.model_validate({
        "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
        "municipalities": [{"id": m, "name": f"Gemeinde {m}"} for m in municipalities],
        "schools": [{"site": s, "name": f"Schule {s}", "municipality": rng.choice(municipalities)}
                    for s in schools],
        "cabinets": [{"school": s, "id": f"k{c}"} for s in schools for c in range(4)
                     if rng.random() < 0.3],
    })
    return org, [*schools, "x-unknown", "y-unknown"]


def _random_changes(feed: Feed, rng: random.Random, sites: list[str], count: int,
                    at: datetime) -> None:
    for _ in range(count):
        site, cabinet = rng.choice(sites), f"k{rng.randint(0, 5)}"
        size = len(view.slots) if (view := feed.fleet.get(site, cabinet)) and view.slots else 0
        what = rng.random()
        if what < 0.15 or size == 0:
            feed.online(site, cabinet, rng.randint(1, 8), at, rng.choice(SENSINGS))
        elif what < 0.3:
            feed.status(site, cabinet, rng.choice(list(AgentStatus)), at)
        else:  # with certainty (revision 2), without (an older agent), or each in turn
            certainty = ([rng.choice(CERTAINTIES) for _ in range(size)] if rng.random() < 0.6
                         else None)
            feed.telemetry(site, cabinet, [rng.choice(STATES) for _ in range(size)], at=at,
                           certainty=certainty)


@pytest.mark.parametrize("seed", range(40))
def test_kept_counts_equal_the_computation_from_scratch(seed: int) -> None:
    rng = random.Random(seed)
    org, sites = _random_world(rng)
    fleet, index = Fleet(), OrgIndex.of(org)
    feed = Feed(fleet)
    cache = OverviewCache(index)
    for step in range(4):
        at = T0 + timedelta(minutes=step)
        _random_changes(feed, rng, sites, rng.randint(0, 30), at)
        if rng.random() < 0.3:  # a status only: a cabinet without slots
            feed.status(rng.choice(sites), "k9", AgentStatus.ONLINE, at)
        keys = [v.key for v in fleet.snapshot()] + list(index.configured) + [("s0", "k-gone")]
        alerts = {key: rng.randint(0, 3) for key in keys if rng.random() < 0.3}
        snapshot = fleet.snapshot()
        for sites_seen in (None, frozenset(), frozenset(rng.sample(sites, rng.randint(1, 3))),
                           frozenset(s.site for s in org.schools)):
            scope = Scope(sites_seen, True)
            per_page = rng.randint(1, 7)
            for page in range(1, 5):
                expected = build_overview(index, snapshot, alerts, scope.sees, page, per_page)
                assert cache.build(fleet, alerts, sites_seen, page, per_page) == expected
        assert cache.statuses(fleet) == dict(Counter(c.status.value for c in snapshot))
        for site in sites:
            seen = {c.cabinet for c in snapshot if c.site == site}
            assert cache.cabinets_of(fleet, site) == sorted(
                seen | {c for s, c in index.configured if s == site})
        wanted = frozenset(rng.sample(sites, 2))
        assert [fleet.get(*k) for k in cache.keys_of(fleet, wanted) if fleet.get(*k)] == [
            c for c in snapshot if c.site in wanted]


def _one_cabinet() -> tuple[Feed, Dashboard]:
    org = Organisation.model_validate({
        "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
        "municipalities": [{"id": "nord", "name": "Nord"}],
        "schools": [{"site": "gs", "name": "GS", "municipality": "nord"}]})
    feed = Feed(Fleet())
    feed.online("gs", "k1", 2)
    feed.telemetry("gs", "k1", [S.CHARGING, S.CHARGING])
    feed.online("gs", "k2", 2)
    feed.telemetry("gs", "k2", [S.EMPTY, S.EMPTY])
    return feed, _dashboard(feed.fleet, [T0], org)


def test_a_changed_cabinets_counts_are_updated_everywhere() -> None:
    feed, dash = _one_cabinet()
    admin = Scope(None, True)
    before = dash.overview(admin)
    assert (before.counts.charging, before.counts.charged, before.counts.missing) == (2, 0, 2)
    feed.telemetry("gs", "k1", [S.CHARGED, S.FAULT], at=T0 + timedelta(seconds=10))
    after = dash.overview(admin)
    (mun,) = after.municipalities
    row = mun.schools["gs"].cabinets[0]
    for counts in (after.counts, mun.counts, mun.schools["gs"].counts, row.counts):
        assert (counts.charging, counts.charged, counts.faulty) == (0, 1, 1)
    assert after == build_overview(dash.index, feed.fleet.snapshot(), {}, admin.sees)
    feed.status("gs", "k2", AgentStatus.OFFLINE, T0 + timedelta(seconds=20))
    assert dash.overview(admin).counts.online == 1


def test_a_request_without_changes_recounts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    feed, dash = _one_cabinet()
    counted: list[CabinetView | None] = []
    tally = overview_module._tally

    def spy(view: CabinetView | None) -> tuple[int, ...]:
        counted.append(view)
        return tally(view)

    monkeypatch.setattr(overview_module, "_tally", spy)
    dash.overview(Scope(None, True))
    assert len(counted) == 2
    dash.overview(Scope(None, True))
    dash.overview(Scope(frozenset({"gs"}), False))
    assert len(counted) == 2
    feed.telemetry("gs", "k2", [S.CHARGING, S.EMPTY], at=T0 + timedelta(seconds=5))
    dash.overview(Scope(None, True))
    assert [v.cabinet for v in counted[2:] if v is not None] == ["k2"]


def test_views_of_a_scope_are_looked_up_not_swept() -> None:
    feed, dash = _one_cabinet()
    feed.online("other", "k1", 1)
    assert [v.key for v in dash.views(Scope(frozenset({"gs"}), False))] == [("gs", "k1"),
                                                                          ("gs", "k2")]
    assert [v.key for v in dash.views(Scope(None, True))] == [
        ("gs", "k1"), ("gs", "k2"), ("other", "k1")]
    assert list(dash.views(Scope(frozenset(), False))) == []


def test_csv_is_streamed_in_chunks() -> None:
    response = _csv_stream("x.csv", ("a", "b"), ((n, n * 2.5) for n in range(5)), chunk_rows=2)
    assert isinstance(response, StreamingResponse)

    async def body() -> list[str]:
        return [str(chunk) async for chunk in response.body_iterator]

    chunks = asyncio.run(body())
    assert len(chunks) == 3
    # German Excel by default: byte order mark, ";" and a decimal comma
    assert "".join(chunks).splitlines() == ['\ufeff"a";"b"', '"0";"0"', '"1";"2,5"', '"2";"5"',
                                            '"3";"7,5"', '"4";"10"']


def test_a_packed_state_change_has_room_for_every_state() -> None:
    from server.web import history

    assert len(SlotState) <= history._STATE_MASK + 1
    assert len(SlotState) < history._NO_STATE


def test_neither_the_counts_nor_the_history_keep_a_record_alive() -> None:
    """An idle dashboard must not hold the fleet's replaced records (a second fleet in memory)."""
    import gc

    feed, dash = _one_cabinet()
    dash.overview(Scope(None, True))
    dash.sample()
    old = feed.fleet.get("gs", "k1")
    feed.telemetry("gs", "k1", [S.CHARGED, S.CHARGED], at=T0 + timedelta(seconds=5))
    holders = [*vars(dash.counts).values(), *vars(dash.history).values()]
    assert not any(any(r is h for h in holders) for r in gc.get_referrers(old))
    assert not any(isinstance(v, CabinetView) for h in holders if isinstance(h, dict)
                   for v in h.values())
