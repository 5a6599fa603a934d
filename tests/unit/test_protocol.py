from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from cabinet_agent.common import protocol as p

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema" / "v1"
ENVELOPE = {"v": 1, "site": "gs-park", "cabinet": "c1", "boot_id": "a" * 32, "seq": 7,
            "ts": datetime(2026, 11, 30, 7, 0, tzinfo=UTC), "clock_synced": True}


def _telemetry(**over: object) -> p.TelemetryMessage:
    fields = {**ENVELOPE, "power_w": [12.5, None], "states": ["charging", "unknown"],
              "temperature_c": 22.0, "door": "closed", "mains": "on", "devices": [], **over}
    return p.TelemetryMessage(**fields)  # type: ignore[arg-type]


def test_round_trip_through_the_wire() -> None:
    message = _telemetry()
    topic = p.topic_for("gs-park", "c1", p.Channel.TELEMETRY)
    assert topic == "ladewache/v1/gs-park/c1/telemetry"
    assert p.decode(topic, p.encode(message)) == message


def test_unknown_power_stays_null_on_the_wire() -> None:
    wire = json.loads(p.encode(_telemetry()))
    assert wire["power_w"] == [12.5, None]
    assert wire["ts"].endswith("Z")


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("ladewache/v1/gs-park/c1/telemetry", b"{not json", "bad_json"),
        ("ladewache/v1/gs-park/c1/telemetry", b"\xff\xfe", "bad_json"),
        ("ladewache/v1/gs-park/c1/telemetry", b"[1, 2]", "schema"),
        ("ladewache/v1/gs-park/c1/telemetry", b'{"v": 1, "type": "telemetry"}', "schema"),
        ("ladewache/v1/gs-park/c1/nonsense", b"{}", "unknown_topic"),
        ("ladewache/v2/gs-park/c1/telemetry", b"{}", "unknown_topic"),
        ("other/v1/gs-park/c1/telemetry", b"{}", "unknown_topic"),
        ("ladewache/v1/gs-park/c1/telemetry", b" " * (p.MAX_PAYLOAD_BYTES + 1), "too_large"),
        # a payload naming another cabinet than its topic (a stolen agent speaking for another)
        ("ladewache/v1/gs-park/c2/telemetry", None, "topic_mismatch"),
        # a telemetry payload on the status channel
        ("ladewache/v1/gs-park/c1/status", None, "topic_mismatch"),
    ],
)
def test_bad_messages_are_rejected_with_a_countable_reason(topic: str, payload: bytes | None,
                                                           reason: str) -> None:
    with pytest.raises(p.ProtocolError) as info:
        p.decode(topic, payload if payload is not None else p.encode(_telemetry()))
    assert info.value.reason == reason


def test_timestamps_must_be_utc() -> None:
    with pytest.raises(ValueError, match="UTC"):
        _telemetry(ts=datetime(2026, 11, 30, 8, 0, tzinfo=timezone(timedelta(hours=1))))
    with pytest.raises(ValueError, match="UTC"):
        _telemetry(ts=datetime(2026, 11, 30, 8, 0))


def test_ids_cannot_hold_mqtt_wildcards() -> None:
    with pytest.raises(ValueError):
        _telemetry(site="gs/park")
    with pytest.raises(ValueError):
        _telemetry(cabinet="+")


def test_checked_in_json_schema_matches_the_models() -> None:
    """Fails when a model changes without `python -m cabinet_agent.common.protocol docs/schema/v1`."""
    generated = p.json_schemas()
    on_disk = {f.name.removesuffix(".schema.json"): json.loads(f.read_text())
               for f in SCHEMA_DIR.glob("*.schema.json")}
    assert on_disk == json.loads(json.dumps(generated))


def test_every_channel_has_qos_and_the_right_retain_flag() -> None:
    assert {c: p.QOS[c] for c in p.Channel} == {
        p.Channel.STATUS: 1, p.Channel.BIRTH: 1, p.Channel.STATE: 1, p.Channel.EVENT: 1,
        p.Channel.TELEMETRY: 1}
    assert {p.Channel.STATUS, p.Channel.BIRTH, p.Channel.STATE} == p.RETAINED
