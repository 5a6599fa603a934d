"""Fuzzing what comes in from outside: the collector's message handling and the serial-line parser.

Random bytes, mutated valid messages, oversized, replayed and spoofed payloads: nothing raises,
everything is counted — received = accepted + rejected + duplicates — and only valid messages
change the fleet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cabinet_agent.common.protocol import (
    MAX_PAYLOAD_BYTES,
    Channel,
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    SlotState,
    TelemetryMessage,
    encode,
    topic_for,
)
from cabinet_agent.line_protocol import LineDecoder, checksum
from cabinet_agent.registers import load_profile
from server.fleet import Fleet
from server.pipeline import Pipeline
from tests.support.explore import examples
from tests.support.sinks import ListSink

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
BOOT = "ab" * 16
LINE_PROFILE = load_profile("ladewache-line-board-16")



def _pipeline() -> tuple[Pipeline, Fleet, ListSink]:
    fleet, sink = Fleet(), ListSink()
    return Pipeline(fleet, sink, clock=lambda: NOW), fleet, sink


def _balanced(pipeline: Pipeline) -> bool:
    s = pipeline.stats()
    return s.received == s.accepted + sum(s.rejected.values()) + s.duplicates


def _telemetry(seq: int = 1, cabinet: str = "c1") -> TelemetryMessage:
    return TelemetryMessage(v=1, site="gs", cabinet=cabinet, boot_id=BOOT, seq=seq, ts=NOW,
                            clock_synced=True, power_w=[10.0, None], states=[SlotState.CHARGING,
                            SlotState.UNKNOWN], temperature_c=20.0, door=DoorState.CLOSED,
                            mains=MainsState.ON, devices=[])


def _event(seq: int = 2) -> EventMessage:
    return EventMessage(v=1, site="gs", cabinet="c1", boot_id=BOOT, seq=seq, ts=NOW,
                        clock_synced=True, event=EventKind.DOOR_CHANGED, old="closed", new="open")


TOPICS = st.one_of(
    st.sampled_from([topic_for("gs", "c1", c) for c in Channel]),
    st.text(max_size=80),
    st.lists(st.sampled_from(["ladewache", "v1", "gs", "c1", "+", "#", "", "event", "v2"]),
             max_size=7).map("/".join),
)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TOPICS, st.binary(max_size=300)), max_size=20))
def test_random_bytes_never_raise_and_are_counted(messages: list[tuple[str, bytes]]) -> None:
    pipeline, _, _ = _pipeline()
    for topic, payload in messages:
        pipeline.handle(topic, payload)
    assert _balanced(pipeline)
    assert pipeline.stats().rejected["internal"] == 0


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["telemetry", "event"]), st.data())
def test_mutated_valid_messages_are_accepted_or_rejected_never_crash(kind: str,
                                                                     data: st.DataObject) -> None:
    message = _telemetry() if kind == "telemetry" else _event()
    raw: dict[str, Any] = json.loads(encode(message))
    for _ in range(data.draw(st.integers(1, 4))):
        key = data.draw(st.sampled_from([*raw, "extra"]))
        if data.draw(st.booleans()):
            raw[key] = data.draw(JSON_VALUES)
        else:
            raw.pop(key, None)
    pipeline, fleet, _ = _pipeline()
    accepted = pipeline.handle(topic_for("gs", "c1", Channel(kind)), json.dumps(raw).encode())
    stats = pipeline.stats()
    assert _balanced(pipeline) and stats.rejected["internal"] == 0
    assert (len(fleet) == 1) == accepted  # only a valid message reaches the fleet


def test_oversized_spoofed_and_replayed_messages_are_rejected_or_deduplicated() -> None:
    pipeline, fleet, sink = _pipeline()
    topic = topic_for("gs", "c1", Channel.TELEMETRY)
    assert pipeline.handle(topic, encode(_telemetry(seq=1)))
    lines = len(sink.lines)
    assert not pipeline.handle(topic, encode(_telemetry(seq=1)))  # replayed: same (boot_id, seq)
    assert len(sink.lines) == lines
    assert not pipeline.handle(topic, encode(_telemetry(seq=2, cabinet="c2")))  # spoofed
    big = encode(_telemetry(seq=3))[:-1] + b',"pad":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    assert not pipeline.handle(topic, big)
    stats = pipeline.stats()
    assert stats.duplicates == 1
    assert stats.rejected["topic_mismatch"] == 1 and stats.rejected["too_large"] == 1
    assert fleet.get("gs", "c2") is None
    assert stats.integrity["gs/c1"].duplicates == 1


@settings(max_examples=examples(300))
@given(st.lists(st.one_of(
    st.binary(max_size=120),
    st.builds(lambda body: f"${body}*{checksum(body.encode()):02X}\r\n".encode(),
              st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=:.,-_[]", max_size=40)),
), max_size=30))
def test_the_serial_line_parser_survives_noise_and_counts_it(chunks: list[bytes]) -> None:
    decoder = LineDecoder(LINE_PROFILE)  # type: ignore[arg-type]
    readings = []
    for chunk in chunks:
        readings += decoder.feed(chunk)
    assert all(reading.key for reading in readings)  # whatever it accepts is a named reading
    assert len(readings) <= sum(chunk.count(b"\n") for chunk in chunks)  # at most one per line
    assert decoder.rejected_total >= 0
