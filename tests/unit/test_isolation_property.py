"""Whatever cabinet A sends, cabinet B's stored data, alerts, history and sessions are unchanged.

Cabinet B sends an ordinary evening (birth, state, telemetry, door events, a finished charge with
its battery data). Hypothesis draws what cabinet A sends on its own topics (the broker's ACL keeps
it there): well-formed messages with hostile values (times from year 1 to 9999, infinite and huge
numbers, sequence numbers beyond 64 bits, thousands of slots or devices, empty names, B's asset
tags, B's ids in the payload) and plain garbage, interleaved with B's messages at drawn places.
B's messages are then run through a collector twice, once alone and once with A's, and every
product of B is compared: the TSDB lines tagged with B, B's fleet record, its sessions and battery
verdicts, its alerts over the following day and its slot history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cabinet_agent.common.protocol import Channel, topic_for
from server.alerts.engine import AlertEngine
from server.alerts.rules import CabinetOffline, RulesSettings, build_rules
from server.alerts.state import StoredState
from server.assets import AssetRegister
from server.battery import BatteryAgeing
from server.boundary import Boundary
from server.events import EventLog
from server.integrity import Integrity
from server.org import Organisation
from server.pipeline import Pipeline
from server.sessions import SessionRecorder
from server.web.history import SlotHistory
from tests.support.explore import examples
from tests.support.sinks import ListSink

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # a Monday afternoon
SITE = "gs-iso"
B_TAGS = {1: "GS-ISO-0001", 2: "GS-ISO-0002", 3: "GS-ISO-0003"}
ORG = Organisation.model_validate({
    "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nord"}],
    "schools": [{"site": SITE, "name": "Grundschule Iso", "municipality": "nord"}],
    "cabinets": [{"school": SITE, "id": "b", "name": "Raum 1", "slots": B_TAGS},
                 {"school": SITE, "id": "a", "name": "Raum 2"}],
})
B_BOOT = "b" * 32


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- cabinet B: an ordinary afternoon ------------------------------------------------------------

def _b_messages() -> list[tuple[str, bytes, datetime]]:
    """(topic, payload, receive time) of B's afternoon, one message every 30 s."""
    out: list[tuple[str, bytes, datetime]] = []
    seq = iter(range(10_000))
    events = 0

    def env(at: datetime) -> dict[str, Any]:
        return {"v": 1, "site": SITE, "cabinet": "b", "boot_id": B_BOOT, "seq": next(seq),
                "ts": _iso(at), "clock_synced": True}

    def add(message: dict[str, Any], at: datetime) -> None:
        out.append((topic_for(SITE, "b", Channel(message["type"])), json.dumps(message).encode(),
                    at + timedelta(milliseconds=300)))

    at = NOW
    add({**env(at), "type": "status", "status": "online"}, at)
    add({**env(at), "type": "birth", "agent_version": "1.4", "config_hash": "0123abcd",
         "cabinet_model": "ladewache-8", "slot_count": 3,
         "slots": [{"slot": n, "asset_tag": t} for n, t in B_TAGS.items()],
         "poll_interval_s": 5.0, "telemetry_interval_s": 30.0}, at)
    states = ["charging", "charged", "empty"]
    since = _iso(NOW - timedelta(hours=1))
    add({**env(at), "type": "state",
         "slots": [{"slot": n, "state": s, "power_w": 9.0 if s == "charging" else 0.0,
                    "since": since, "certainty": "certain"} for n, s in zip(B_TAGS, states, strict=True)],
         "door": "closed", "temperature_c": 22.5, "mains": "on",
         "devices": [{"name": "meter", "ok": True}]}, at)
    for minute in range(1, 16):
        at = NOW + timedelta(seconds=30 * minute)
        if minute == 5:
            events += 1
            add({**env(at), "type": "event", "event": "door_changed", "old": "closed",
                 "new": "open", "door": "open", "event_seq": events}, at)
        if minute == 9:
            events += 1
            session = {"slot": 1, "asset_tag": B_TAGS[1], "started_at": _iso(NOW - timedelta(hours=2)),
                       "ended_at": _iso(at), "duration_s": 7230.0, "energy_wh": 31.5,
                       "peak_w": 18.2, "end": "full", "taper_wh": 6.1}
            add({**env(at), "type": "event", "event": "session_ended", "slot": 1,
                 "session": session, "event_seq": events}, at)
        add({**env(at), "type": "telemetry", "power_w": [max(0.0, 9.0 - minute / 2), 0.0, 0.0],
             "states": states, "temperature_c": 22.5 + minute / 10, "door": "closed",
             "mains": "on", "devices": [{"name": "meter", "ok": True}], "outbox_queued": 0,
             "event_seq": events}, at)
    return out


B_MESSAGES = _b_messages()


# -- cabinet A: whatever it sends ----------------------------------------------------------------

_TIMES = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)),
    st.sampled_from([NOW, NOW + timedelta(days=1), NOW - timedelta(days=400)]),
).map(_iso)
_NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70),
                     st.just(1e308), st.none())
_NAMES = st.one_of(st.text(max_size=70), st.sampled_from(["", " ", "b", *B_TAGS.values(),
                                                          "x,cabinet=b", "a\nb", "\\"]))
_SLOT_NUMBERS = st.one_of(st.integers(-2, 10), st.integers(0, 2**40))
_STATES = st.sampled_from(["empty", "charging", "charged", "present_idle", "fault", "unknown"])


_SANE_TIMES = st.integers(-3600, 3600).map(lambda s: _iso(NOW + timedelta(seconds=s)))
_SANE_NUMBERS = st.floats(0, 30)


@st.composite
def _valid(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A message cabinet A may well send: it passes every check, names only itself, and may still
    claim B's asset tags (the register decides whose they are)."""
    width = draw(st.integers(1, 4))
    tag = st.sampled_from([*B_TAGS.values(), None, "A-1"])
    message: dict[str, Any] = {
        "v": 1, "site": SITE, "cabinet": "a", "boot_id": draw(st.sampled_from(["a" * 32, B_BOOT])),
        "seq": draw(st.integers(0, 60)), "ts": draw(_SANE_TIMES),
        "clock_synced": draw(st.booleans()), "replayed": draw(st.booleans()), "type": kind}
    devices = [{"name": "meter", "ok": draw(st.booleans())}]
    if kind == "status":
        message |= {"status": draw(st.sampled_from(["online", "offline", "stopped"]))}
    elif kind == "birth":
        message |= {"agent_version": "1.0", "config_hash": "0123abcd", "cabinet_model": "m",
                    "slot_count": width,
                    "slots": [{"slot": n, "asset_tag": draw(tag)} for n in range(1, width + 1)],
                    "poll_interval_s": 5.0, "telemetry_interval_s": 30.0}
    elif kind == "state":
        message |= {"slots": [{"slot": n, "state": draw(_STATES), "power_w": draw(_SANE_NUMBERS),
                               "since": draw(_SANE_TIMES)} for n in range(1, width + 1)],
                    "door": draw(st.sampled_from(["open", "closed"])), "temperature_c": 20.0,
                    "mains": draw(st.sampled_from(["on", "off"])), "devices": devices}
    elif kind == "event":
        event = draw(st.sampled_from(["session_ended", "slot_changed", "door_changed",
                                      "device_fault", "session_ended"]))
        message |= {"event": event, "slot": 1, "event_seq": draw(st.integers(1, 10))}
        if event == "session_ended":
            message["session"] = {
                "slot": 1, "asset_tag": draw(tag), "started_at": _iso(NOW - timedelta(hours=2)),
                "ended_at": draw(_SANE_TIMES), "duration_s": 7000.0, "energy_wh": 30.0,
                "peak_w": 18.0, "end": "full", "taper_wh": draw(st.floats(0.5, 9))}
    else:
        message |= {"power_w": [draw(_SANE_NUMBERS) for _ in range(width)],
                    "states": [draw(_STATES) for _ in range(width)], "temperature_c": 20.0,
                    "door": "closed", "mains": "on", "devices": devices,
                    "outbox_queued": draw(st.integers(0, 2)), "event_seq": draw(st.integers(0, 10))}
    return message


_HOSTILE_VALUES = st.one_of(
    _TIMES, _NUMBERS, _NAMES, _SLOT_NUMBERS, st.integers(-1, 2**70), st.just("b"), st.just(B_BOOT),
    st.lists(_NUMBERS, max_size=400), st.lists(_STATES, max_size=400),
    st.lists(st.fixed_dictionaries({"name": _NAMES, "ok": st.booleans()}), max_size=40),
    st.lists(st.fixed_dictionaries({"slot": _SLOT_NUMBERS, "state": _STATES, "power_w": _NUMBERS,
                                    "since": _TIMES}), max_size=40),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from _paths(inner, (*prefix, index))


@st.composite
def _hostile(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message of A with a few of its values (anywhere in it) replaced by hostile ones, a
    field dropped or one added."""
    message = draw(_valid(draw(st.sampled_from(["event", "birth", "state", "telemetry",
                                                "status", "event"]))))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(sorted(_paths(message), key=repr)))
        parent = message
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.integers(0, 9)) == 0 and isinstance(parent, dict):
            parent.pop(path[-1])
        else:
            parent[path[-1]] = draw(_HOSTILE_VALUES)
    return message


def _payload(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()  # json writes inf and nan as Infinity and NaN


_A_PAYLOADS = st.one_of(
    _hostile().map(_payload),
    _hostile().map(lambda m: _payload(m).replace(b"1e+308", b"1e999")),
    st.binary(max_size=200),
)
_A_MESSAGES = st.lists(st.tuples(st.integers(0, len(B_MESSAGES)),
                                 st.sampled_from(list(Channel)), _A_PAYLOADS), max_size=25)


# -- one collector, and what it made of B ----------------------------------------------------------


_TAG = re.compile(r"(?<!\\),")


def _tags(line: str) -> dict[str, str]:
    head = re.split(r"(?<!\\) ", line, maxsplit=1)[0]
    return dict(part.split("=", 1) for part in _TAG.split(head)[1:])


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _b_products(a_messages: list[tuple[int, Channel, bytes]]) -> dict[str, Any]:
    clock, sink, fleet = Clock(), ListSink(), AssetRegister.from_org(ORG).fleet()
    battery = BatteryAgeing()
    sessions = SessionRecorder(None, battery)
    pipeline = Pipeline(fleet, sink, clock, sessions, EventLog(sessions.store), Integrity(), Boundary())
    history = SlotHistory()
    state = StoredState.in_memory()
    offline = CabinetOffline(pending_s=120, silence_factor=3, min_silence_s=30)
    engine = AlertEngine(build_rules(RulesSettings(), offline, battery), state, fleet,
                         clock, org=ORG)
    version = 0

    def observe() -> None:
        nonlocal version
        version, changed = fleet.changed_since(version)
        history.observe(changed, clock.now)
        engine.tick()

    def send_a(position: int) -> Iterator[None]:
        for where, channel, payload in a_messages:
            if where == position:
                pipeline.handle(topic_for(SITE, "a", channel), payload)
                yield

    for position, (topic, payload, received_at) in enumerate(B_MESSAGES):
        clock.now = received_at
        for _ in send_a(position):
            observe()
        assert pipeline.handle(topic, payload), f"B's own message {position} was refused"
        observe()
    for _ in send_a(len(B_MESSAGES)):
        observe()
    for hours in (0.5, 3, 26):  # the evening, the night and the next afternoon
        clock.now = B_MESSAGES[-1][2] + timedelta(hours=hours)
        observe()
    b = fleet.get(SITE, "b")
    assert b is not None
    return {
        "lines": [line for line in sink.lines
                  if (t := _tags(line)).get("site") == SITE and t.get("cabinet") == "b"],
        "tagged": sorted(line for line in sink.lines if any(tag in line for tag in B_TAGS.values())),
        "record": b,
        "sessions": sessions.recent(SITE, "b"),
        "by_tag": {tag: sessions.for_asset(tag) for tag in B_TAGS.values()},
        "battery": {tag: battery.verdict(tag) for tag in B_TAGS.values()},
        "alerts": sorted((a.fingerprint, a.active_at, a.starts_at, a.ends_at,
                          tuple(sorted(a.labels.items())), tuple(sorted(a.annotations.items())))
                         for a in state.all() if a.labels.get("cabinet") == "b"),
        "history": [(history.samples(SITE, "b", n), history.transitions(SITE, "b", n))
                    for n in B_TAGS],
    }


ALONE = _b_products([])


def test_cabinet_b_alone_produces_what_the_comparison_needs() -> None:
    """The comparison is worth something only if B produces all of it by itself."""
    assert len(ALONE["lines"]) > 40
    assert ALONE["sessions"] and all(ALONE["by_tag"][B_TAGS[1]] for _ in (1,))
    assert ALONE["alerts"], "B's empty slot 3 and the door raise alerts over the next day"
    assert any(samples for samples, _ in ALONE["history"])


@settings(max_examples=examples(40), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(a_messages=_A_MESSAGES)
def test_whatever_cabinet_a_sends_cabinet_b_is_unchanged(
        a_messages: list[tuple[int, Channel, bytes]]) -> None:
    assert _b_products(a_messages) == ALONE
