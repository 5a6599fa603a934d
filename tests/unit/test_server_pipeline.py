"""Decode → fleet → lines → sink, and the counting of every kind of bad message."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Channel,
    DoorState,
    MainsState,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
    encode,
    topic_for,
)
from server.fleet import Fleet, FleetStatus
from server.pipeline import REJECT_REASONS, Pipeline
from tests.support.inventory import tagged_fleet
from tests.support.sinks import ListSink

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
BOOT = "c" * 32



_SEQ = itertools.count(3)


def _env(cabinet: str = "c1") -> dict[str, object]:
    # Every message its own seq: a repeated (boot_id, seq) is a duplicate and not processed again.
    return {"v": 1, "site": "rs-sued", "cabinet": cabinet, "boot_id": BOOT, "seq": next(_SEQ),
            "ts": NOW, "clock_synced": True}


def _birth() -> BirthMessage:
    return BirthMessage(**_env(), agent_version="0.1.0", config_hash="0123abcd",  # type: ignore[arg-type]
                        cabinet_model="fuyl-tower-2", slot_count=2,
                        # what an older agent still claims: the inventory's IPAD-7 holds
                        slots=[SlotInfo(slot=1, asset_tag="CLAIMED-1"), SlotInfo(slot=2)],
                        poll_interval_s=1.0, telemetry_interval_s=15.0)


def _telemetry() -> TelemetryMessage:
    return TelemetryMessage(**_env(), power_w=[11.0, None],  # type: ignore[arg-type]
                            states=[SlotState.CHARGING, SlotState.EMPTY], temperature_c=21.5,
                            door=DoorState.CLOSED, mains=MainsState.ON, devices=[], poll_ms=5.0)


def _topic(channel: Channel, cabinet: str = "c1") -> str:
    return topic_for("rs-sued", cabinet, channel)


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def fleet() -> Fleet:
    return tagged_fleet({("rs-sued", "c1"): {1: "IPAD-7"}, ("rs-sued", "c9"): {1: "IPAD-9"}})


@pytest.fixture
def pipeline(fleet: Fleet, sink: ListSink) -> Pipeline:
    return Pipeline(fleet, sink, clock=lambda: NOW + timedelta(seconds=1))


def test_good_messages_update_the_fleet_and_reach_the_sink(pipeline: Pipeline, fleet: Fleet,
                                                          sink: ListSink) -> None:
    status = StatusMessage(**_env(), status=AgentStatus.ONLINE)  # type: ignore[arg-type]
    assert pipeline.handle(_topic(Channel.STATUS), encode(status))
    assert pipeline.handle(_topic(Channel.BIRTH), encode(_birth()))
    assert sink.lines == []  # status and birth are not time series
    assert pipeline.handle(_topic(Channel.TELEMETRY), encode(_telemetry()))
    assert len(sink.lines) == 3
    assert sink.lines[0].startswith("slot,site=rs-sued,cabinet=c1,slot=1,asset_tag=IPAD-7 ")
    assert not any("CLAIMED" in line for line in sink.lines)  # the birth's own tag is not taken
    cabinet = fleet.get("rs-sued", "c1")
    assert cabinet is not None
    assert cabinet.status is FleetStatus.ONLINE
    assert cabinet.model == "fuyl-tower-2"
    assert cabinet.last_seen_at == NOW + timedelta(seconds=1)
    assert cabinet.last_message_ts == NOW
    assert [(s.slot, s.asset_tag, s.state, s.power_w) for s in cabinet.slots] == [
        (1, "IPAD-7", SlotState.CHARGING, 11.0), (2, None, SlotState.EMPTY, None)]
    stats = pipeline.stats()
    assert (stats.received, stats.accepted) == (3, 3)
    assert set(stats.rejected) == set(REJECT_REASONS)
    assert sum(stats.rejected.values()) == 0
    assert list(stats.integrity) == ["rs-sued/c1"]
    counters = pipeline.stats(integrity=False)  # for /metrics: no pass over every cabinet
    assert (counters.received, counters.accepted, counters.integrity) == (3, 3, {})


def test_state_messages_update_slots_and_write_lines(pipeline: Pipeline, fleet: Fleet,
                                                     sink: ListSink) -> None:
    pipeline.handle(_topic(Channel.BIRTH), encode(_birth()))
    state = StateMessage(**_env(), slots=[  # type: ignore[arg-type]
        SlotSnapshot(slot=1, state=SlotState.CHARGED, power_w=0.4, since=NOW)],
        door=DoorState.OPEN, temperature_c=None, mains=MainsState.ON, devices=[])
    assert pipeline.handle(_topic(Channel.STATE), encode(state))
    assert sink.lines[0].startswith("slot,site=rs-sued,cabinet=c1,slot=1,asset_tag=IPAD-7 "
                                    "power_w=0.4,state=2i ")
    cabinet = fleet.get("rs-sued", "c1")
    assert cabinet is not None and cabinet.door is DoorState.OPEN
    assert cabinet.slots[0].since == NOW


def _schema_breaking() -> bytes:
    raw = json.loads(encode(_telemetry()))
    raw["power_w"] = "lots"
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (_topic(Channel.TELEMETRY), b"{not json", "bad_json"),
        (_topic(Channel.TELEMETRY), b"\xff\xfe", "bad_json"),
        (_topic(Channel.TELEMETRY), b"[1, 2]", "schema"),
        (_topic(Channel.TELEMETRY), _schema_breaking(), "schema"),
        ("ladewache/v1/rs-sued/c1/bogus", encode(_telemetry()), "unknown_topic"),
        ("ladewache/v2/rs-sued/c1/telemetry", encode(_telemetry()), "unknown_topic"),
        ("<topic is not UTF-8>", b"{}", "unknown_topic"),
        (_topic(Channel.TELEMETRY), b" " * (64 * 1024 + 1), "too_large"),
        (_topic(Channel.TELEMETRY, cabinet="other"), encode(_telemetry()), "topic_mismatch"),
        (_topic(Channel.STATE), encode(_telemetry()), "topic_mismatch"),
    ],
)
def test_bad_messages_are_counted_by_reason_and_dropped(pipeline: Pipeline, fleet: Fleet,
                                                       sink: ListSink, topic: str,
                                                       payload: bytes, reason: str) -> None:
    assert not pipeline.handle(topic, payload)
    stats = pipeline.stats()
    assert stats.rejected[reason] == 1
    assert sum(stats.rejected.values()) == 1
    assert (stats.received, stats.accepted) == (1, 0)
    assert len(fleet) == 0 and sink.lines == []
    assert pipeline.handle(_topic(Channel.TELEMETRY), encode(_telemetry()))  # still works


def test_a_failure_in_our_own_code_is_counted_not_raised(pipeline: Pipeline,
                                                         sink: ListSink) -> None:
    sink.fail = True
    assert not pipeline.handle(_topic(Channel.TELEMETRY), encode(_telemetry()))
    assert pipeline.stats().rejected["internal"] == 1


# -- a collector restart: the broker hands over a stopped agent's retained messages ---------------

_RESTART_BOOT = "e" * 32


def _boot_env(seq: int) -> dict[str, object]:
    return {"v": 1, "site": "rs-sued", "cabinet": "c9", "boot_id": _RESTART_BOOT, "seq": seq,
            "ts": NOW + timedelta(seconds=seq), "clock_synced": True}


def _retained_of_a_stopped_agent() -> dict[Channel, bytes]:
    birth = BirthMessage(**_boot_env(1), agent_version="0.1.0",  # type: ignore[arg-type]
                         config_hash="0123abcd", cabinet_model="fuyl-tower-2", slot_count=2,
                         slots=[SlotInfo(slot=1, asset_tag="CLAIMED-9"), SlotInfo(slot=2)],
                         poll_interval_s=1.0, telemetry_interval_s=15.0)
    state = StateMessage(**_boot_env(7), door=DoorState.CLOSED,  # type: ignore[arg-type]
                         mains=MainsState.ON, temperature_c=20.5, devices=[],
                         slots=[SlotSnapshot(slot=1, state=SlotState.CHARGING, power_w=9.5, since=NOW),
                                SlotSnapshot(slot=2, state=SlotState.EMPTY, power_w=0.0, since=NOW)])
    stopped = StatusMessage(**_boot_env(40), status=AgentStatus.STOPPED,  # type: ignore[arg-type]
                            reason="stopped by SIGTERM")
    return {Channel.BIRTH: encode(birth), Channel.STATE: encode(state),
            Channel.STATUS: encode(stopped)}


@pytest.mark.parametrize("order", list(itertools.permutations(
    [Channel.STATUS, Channel.BIRTH, Channel.STATE])))
def test_a_stopped_cabinet_is_restored_from_retained_messages_in_any_order(
        order: tuple[Channel, ...], pipeline: Pipeline, fleet: Fleet) -> None:
    # The status carries the boot's last seq; birth and state earlier ones. Each is the newest of
    # its channel, so none is "older" than the record, whichever the broker hands over first.
    payloads = _retained_of_a_stopped_agent()
    for channel in order:
        assert pipeline.handle(_topic(channel, "c9"), payloads[channel], retained=True)
    view = fleet.get("rs-sued", "c9")
    assert view is not None
    assert (view.status, view.status_reason) == (FleetStatus.STOPPED, "stopped by SIGTERM")
    assert (view.model, view.slot_count, view.stale, view.last_seq) == ("fuyl-tower-2", 2, 0, 40)
    assert [(s.slot, s.asset_tag, s.state) for s in view.slots] == [
        (1, "IPAD-9", SlotState.CHARGING), (2, None, SlotState.EMPTY)]
    assert view.last_message_ts == NOW + timedelta(seconds=40)  # the retained state moved nothing back


def test_a_retained_state_does_not_undo_newer_telemetry(pipeline: Pipeline, fleet: Fleet) -> None:
    payloads = _retained_of_a_stopped_agent()
    assert pipeline.handle(_topic(Channel.BIRTH, "c9"), payloads[Channel.BIRTH], retained=True)
    telemetry = TelemetryMessage(**_boot_env(20), power_w=[0.0, 0.0],  # type: ignore[arg-type]
                                 states=[SlotState.CHARGED, SlotState.EMPTY], temperature_c=21.0,
                                 door=DoorState.CLOSED, mains=MainsState.ON, devices=[], poll_ms=5.0)
    assert pipeline.handle(_topic(Channel.TELEMETRY, "c9"), encode(telemetry))  # live, newer
    assert pipeline.handle(_topic(Channel.STATE, "c9"), payloads[Channel.STATE], retained=True)
    view = fleet.get("rs-sued", "c9")
    assert view is not None and view.stale == 1
    assert [s.state for s in view.slots] == [SlotState.CHARGED, SlotState.EMPTY]
