"""Broker failover with real processes: ``cabinet-sim cabinet`` (Modbus TCP), ``cabinet-agent run``
with ``[mqtt] failover``, two Mosquittos, and on each a subscriber that records every message of
the cabinet, as the collectors of a two-broker setup do (docs/reliability.md, broker failover).

The agent reaches broker A through ``tests/support/netproxy.py``, whose ``PublishTap`` reads
every PUBLISH the agent sent towards A off the wire. A is SIGSTOPped first, so that what the agent
publishes next reaches A's socket but is never acknowledged (a door change among it), and then
SIGKILLed: the messages A never acknowledged must reach B from the agent's outbox. The sequence
numbers (``seq``, one per message of a boot, in the order they were made) prove nothing was lost:
every number from A's ``online`` status to the last message is seen at A or B — except states
that a newer state replaced in the outbox (by design; the collector counts them as harmless gaps)
— and the events' own numbers (``event_seq``) have no hole at all.

Conditions are waited for, never slept.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable

import pytest

from tests.support.failover_rig import Message, Recorder, Setup, connected_to
from tests.support.mqtt_tap import PublishTap
from tests.support.netproxy import NetProxy
from tests.support.procs import wait_until
from tests.support.services import Broker

pytestmark = pytest.mark.integration

def _decoded(published: list[tuple[str, bytes]]) -> dict[int, Message]:
    """PUBLISH packets read off the wire, by seq (a resent one is the same message)."""
    messages: dict[int, Message] = {}
    for topic, payload in published:
        message = json.loads(payload)
        message["_channel"] = topic.rsplit("/", 1)[1]
        messages[message["seq"]] = message
    return messages


def _door_event(new: str) -> Callable[[Message], bool]:
    return lambda m: m["event"] == "door_changed" and m["new"] == new


def test_the_agent_fails_over_to_the_second_broker_with_its_outbox_intact(
        setup: Setup, brokers: tuple[Broker, Broker]) -> None:
    broker_a, broker_b = brokers
    at_a, at_b = Recorder(broker_a.port, "a"), Recorder(broker_b.port, "b")
    tap = PublishTap()
    try:
        with NetProxy("127.0.0.1", broker_a.port, tap=tap.stream) as proxy:
            agent = setup.agent(proxy.port, broker_b.port)
            agent.wait_for_line(connected_to(proxy.port))
            setup.door(True)
            wait_until(lambda: at_a.messages("event", _door_event("open")), 10, "the door event at A")
            wait_until(lambda: len(at_a.messages("telemetry")) >= 3, 10, "telemetry at A")

            # A hangs: what the agent publishes now reaches A's socket and is never acknowledged.
            broker_a.process.signal(signal.SIGSTOP)
            mark = len(tap.published())
            setup.door(False)

            def sent_into_the_hang() -> bool:
                sent = _decoded(tap.published()[mark:])
                event = min((seq for seq, m in sent.items() if m["_channel"] == "event"), default=None)
                return event is not None and sum(
                    seq > event and m["_channel"] == "telemetry" for seq, m in sent.items()) >= 2

            wait_until(sent_into_the_hang, 10, "a door event and telemetry sent into the hung broker")
            broker_a.process.kill()  # SIGKILL: A and everything it held are gone
            held = _decoded(tap.published()[mark:])

            line = agent.wait_for_line(connected_to(broker_b.port), 10)
            assert "(failover broker 1)" in line
            online_b = wait_until(lambda: at_b.messages("status", lambda m: m["status"] == "online"),
                                  10, "the online status at B")[0]
            setup.door(True)
            wait_until(lambda: at_b.messages("event", _door_event("open")), 10, "the door event at B")
            wait_until(lambda: len(at_b.messages("telemetry", lambda m: m["seq"] > online_b["seq"]))
                       >= 3, 10, "telemetry at B")
            agent.kill()  # B sends the Last Will registered with it
            will = wait_until(lambda: at_b.messages("status", lambda m: m["status"] == "offline"),
                              10, "the Last Will at B")[0]
    finally:
        at_a.close()
        at_b.close()

    seen: dict[int, Message] = {}
    for message in at_a.messages() + at_b.messages():
        seen.setdefault(message["seq"], message)
    assert {m["boot_id"] for m in seen.values()} == {online_b["boot_id"]}  # one boot
    online_a = at_a.messages("status", lambda m: m["status"] == "online")[0]
    # The Will registered with B was made as the agent connected there: after all it sent to A.
    assert online_a["seq"] < min(held) <= max(held) < will["seq"] < online_b["seq"]

    # Nothing sent into the hung broker is lost (a state may have been replaced by a newer one),
    # and from the door event on — sent well after A stopped, so A never read it — it reached B:
    # from the agent's outbox (and paho's own resend), not through A.
    lost = {seq: m["_channel"] for seq, m in held.items() if seq not in seen}
    assert set(lost.values()) <= {"state"}, lost
    [closed] = [seq for seq, m in held.items() if m["_channel"] == "event"]
    assert held[closed]["new"] == "closed"
    at_b_seqs = {m["seq"] for m in at_b.messages()}
    assert {seq for seq in held if seq >= closed} - at_b_seqs <= set(lost)

    # No gap from A's online status to the last message but states replaced in the outbox.
    missing = set(range(online_a["seq"], max(seen) + 1)) - set(seen)
    assert missing <= set(lost), (sorted(missing), lost)

    # Events are numbered on their own, and none is missing: the door opened, closed (while A
    # hung, never acknowledged by it) and opened again (on B).
    events = sorted(((m["event_seq"], m) for m in seen.values() if m["_channel"] == "event"),
                    key=lambda pair: pair[0])
    assert [n for n, _ in events] == list(range(1, len(events) + 1))
    doors = [m["new"] for _, m in events if m["event"] == "door_changed"]
    assert doors[-3:] == ["open", "closed", "open"], doors  # after unknown -> closed at the start

    # The agent publishes on B: the retained birth and state again after its online status there.
    for channel in ("birth", "state", "telemetry"):
        assert at_b.messages(channel, lambda m: m["seq"] > online_b["seq"]), channel
    assert will["reason"] == "connection lost (Last Will)"
    assert agent.output().count("MQTT: connected to") == 2


def test_with_the_primary_down_at_start_the_agent_uses_the_failover_and_stays_there(
        setup: Setup, brokers: tuple[Broker, Broker]) -> None:
    broker_a, broker_b = brokers
    broker_a.process.kill()  # its port is closed: connection refused
    at_b = Recorder(broker_b.port, "b")
    at_a: Recorder | None = None
    try:
        agent = setup.agent(broker_a.port, broker_b.port)
        line = agent.wait_for_line(connected_to(broker_b.port), 20)
        assert "(failover broker 1)" in line
        assert re.search(rf"broker 127\.0\.0\.1:{broker_a.port} unreachable .*; trying "
                         rf"127\.0\.0\.1:{broker_b.port} \(failover broker 1\) now", agent.output())
        wait_until(lambda: at_b.messages("status", lambda m: m["status"] == "online"), 10,
                   "the online status at B")

        # A is back. The agent stays on B: no flapping back to the primary.
        broker_a.restart()
        at_a = Recorder(broker_a.port, "a")
        count = len(at_b.messages("telemetry"))
        wait_until(lambda: len(at_b.messages("telemetry")) >= count + 10, 10, "more telemetry at B")
        assert at_a.messages() == []
        assert agent.output().count("MQTT: connected to") == 1
    finally:
        at_b.close()
        if at_a is not None:
            at_a.close()
