"""Which Last Will says "offline" (server/fleet.py ``_is_stale_will``): an agent numbers a new Will
before each connection and says "online" first thing once connected, so
Will(k-1) < online(k-1) < Will(k) < online(k). A Will that a broker sends late for a connection the
agent has replaced since (it moved to another broker, or took its session over) must not mark an
online cabinet offline; the Will of the connection in use must."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cabinet_agent.common.protocol import AgentStatus, StatusMessage, TelemetryMessage
from server.fleet import Fleet, FleetStatus
from tests.support.explore import examples

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
BOOT, NEW_BOOT = "a" * 32, "b" * 32


class Agent:
    """Numbers messages like the agent: a Will per connection, then "online", then telemetry."""

    def __init__(self, boot: str = BOOT) -> None:
        self.boot, self.seq, self.wills = boot, 0, []  # type: tuple[str, int, list[StatusMessage]]

    def _next(self) -> dict[str, object]:
        self.seq += 1
        return {"v": 1, "site": "gs", "cabinet": "k1", "boot_id": self.boot, "seq": self.seq,
                "ts": T0 + timedelta(seconds=self.seq), "clock_synced": True}

    def connect(self) -> list[object]:
        """Register a Will with the broker, then say online and send a telemetry."""
        self.wills.append(StatusMessage(**self._next(), status=AgentStatus.OFFLINE))  # type: ignore[arg-type]
        return [StatusMessage(**self._next(), status=AgentStatus.ONLINE),  # type: ignore[arg-type]
                TelemetryMessage(**self._next(), power_w=[], states=[], devices=[],
                                 door="closed", mains="on", temperature_c=None)]  # type: ignore[arg-type]


def _status(fleet: Fleet) -> FleetStatus:
    view = fleet.get("gs", "k1")
    assert view is not None
    return view.status


def _apply(fleet: Fleet, messages: list[object]) -> None:
    for message in messages:
        fleet.apply(message, T0)  # type: ignore[arg-type]


def test_the_will_of_the_connection_in_use_says_offline() -> None:
    fleet, agent = Fleet(), Agent()
    _apply(fleet, agent.connect())
    _apply(fleet, agent.connect())  # reconnected (the same broker or another)
    _apply(fleet, [agent.wills[-1]])  # and that connection is gone too
    assert _status(fleet) is FleetStatus.OFFLINE


def test_a_late_will_of_a_replaced_connection_changes_nothing() -> None:
    fleet, agent = Fleet(), Agent()
    _apply(fleet, agent.connect())  # at broker A
    _apply(fleet, agent.connect())  # moved to broker B: A has not noticed yet
    _apply(fleet, [agent.wills[0]])  # A's keepalive runs out: it sends the first connection's Will
    assert _status(fleet) is FleetStatus.ONLINE


def test_a_new_boot_starts_counting_afresh() -> None:
    fleet, old = Fleet(), Agent()
    _apply(fleet, old.connect())
    _apply(fleet, old.connect())
    new = Agent(NEW_BOOT)  # a reboot: seq starts again low, below the old boot's "online"s
    _apply(fleet, new.connect())
    _apply(fleet, [new.wills[-1]])
    assert _status(fleet) is FleetStatus.OFFLINE


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=12))
def test_offline_exactly_when_the_latest_connection_s_will_arrives(late: list[int]) -> None:
    """Connections one after another; after each, the Wills of some earlier ones arrive late
    (``late``: how many connections back). The cabinet is online throughout, until the Will of
    the connection in use comes."""
    fleet, agent = Fleet(), Agent()
    for back in late:
        _apply(fleet, agent.connect())
        current = len(agent.wills) - 1
        for earlier in range(max(0, current - back), current):
            _apply(fleet, [agent.wills[earlier]])
            assert _status(fleet) is FleetStatus.ONLINE, (earlier, current)
    _apply(fleet, [agent.wills[-1]])
    assert _status(fleet) is FleetStatus.OFFLINE


def _apply_retained(fleet: Fleet, messages: list[object]) -> None:
    for message in messages:
        fleet.apply(message, T0, retained=True)  # type: ignore[arg-type]


def test_after_a_restart_a_will_kept_by_the_old_broker_changes_nothing() -> None:
    """Two brokers, the collector restarted: B delivers the agent's "online" from its store, A
    the Will of the connection the agent left (kept since), in either order."""
    agent = Agent()
    agent.connect()  # at A: its Will stays there once A noticed the agent left
    online_b = agent.connect()[0]  # at B, where it is now
    for order in ([online_b, agent.wills[0]], [agent.wills[0], online_b]):
        fleet = Fleet()
        _apply_retained(fleet, order)
        assert _status(fleet) is FleetStatus.ONLINE, order


def test_a_will_kept_while_the_collector_was_away_still_says_offline() -> None:
    """One broker: the collector heard "online" live, lost its session, and on subscribing again
    gets the agent's Will from the broker's store: the current connection's, so offline."""
    fleet, agent = Fleet(), Agent()
    _apply(fleet, agent.connect())
    _apply(fleet, agent.connect())
    _apply_retained(fleet, [agent.wills[-1]])
    assert _status(fleet) is FleetStatus.OFFLINE
