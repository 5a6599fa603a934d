"""When a collector with several brokers counts as receiving (server/brokers.py), with a fake
clock: never while a connection has been down for less than the grace (its agents may not have
moved yet), and after it from the end of the grace at the earliest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server.brokers import BrokerLinks
from server.ingest import MqttStats

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
GRACE = timedelta(seconds=90)


@dataclass
class Connection:
    """One broker connection's state, as MqttCollector reports it."""

    broker: str
    up_since: datetime | None = None
    down_from: datetime | None = T0
    error: str | None = None

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def receiving_since(self) -> datetime | None:
        return self.up_since

    def up(self, at: datetime) -> None:
        self.up_since, self.down_from = at, None

    def down(self, at: datetime) -> None:
        self.up_since, self.down_from, self.error = None, at, "connection lost"

    def stats(self) -> MqttStats:
        return MqttStats(self.up_since is not None, 1, 0, self.error, self.down_from)


class Clock:
    now = T0

    def __call__(self) -> datetime:
        return self.now


def test_one_broker_is_its_connection() -> None:
    a, clock = Connection("a:1883"), Clock()
    links = BrokerLinks([a], clock, GRACE)
    assert links.receiving_since() is None
    a.up(T0 + timedelta(seconds=1))
    assert links.receiving_since() == T0 + timedelta(seconds=1)
    a.down(T0 + timedelta(seconds=5))
    clock.now = T0 + timedelta(hours=1)
    assert links.receiving_since() is None  # no grace with one broker: nothing is heard


def test_a_broker_down_freezes_judgement_for_the_grace_then_counts_from_its_end() -> None:
    a, b, clock = Connection("a:1883"), Connection("b:1883"), Clock()
    links = BrokerLinks([a, b], clock, GRACE)
    a.up(T0)
    assert links.receiving_since() is None  # b not yet subscribed
    b.up(T0 + timedelta(seconds=2))
    assert links.receiving_since() == T0 + timedelta(seconds=2)  # from when both are heard
    lost = T0 + timedelta(minutes=10)
    a.down(lost)
    clock.now = lost + GRACE - timedelta(seconds=1)
    assert links.receiving_since() is None  # a's agents may still be moving to b
    clock.now = lost + GRACE + timedelta(seconds=30)
    assert links.receiving_since() == lost + GRACE  # silence counts from the end of the grace
    stats = links.stats()
    assert not stats.connected and stats.last_error == "a:1883: connection lost"
    a.up(clock.now)
    assert links.receiving_since() == clock.now and links.stats().connected


def test_nothing_heard_is_not_receiving_however_long_the_grace_is_over() -> None:
    a, b, clock = Connection("a:1883"), Connection("b:1883"), Clock()
    links = BrokerLinks([a, b], clock, GRACE)
    a.down(T0)
    b.down(T0)
    clock.now = T0 + 10 * GRACE
    assert links.receiving_since() is None


def test_silent_only_while_no_broker_delivers_and_then_since_the_last_was_lost() -> None:
    """What the dashboard's "may be out of date" notice reads (server/web/context.py)."""
    a, b = Connection("a:1883"), Connection("b:1883")
    links = BrokerLinks([a, b], Clock(), GRACE)
    assert links.stats().silent_since == T0  # started, nothing granted yet
    a.up(T0 + timedelta(seconds=1))
    assert links.stats().silent_since is None  # one broker delivers: the view moves
    b.up(T0 + timedelta(seconds=1))
    a.down(T0 + timedelta(seconds=10))
    assert links.stats().silent_since is None
    b.down(T0 + timedelta(seconds=20))
    assert links.stats().silent_since == T0 + timedelta(seconds=20)


def test_missing_a_broker_since_the_first_of_those_still_lost() -> None:
    """What the leader hands over on (server/leader.py): not every broker delivers."""
    a, b, clock = Connection("a:1883"), Connection("b:1883"), Clock()
    links = BrokerLinks([a, b], clock, GRACE)
    assert links.missing_since() == T0  # neither connected yet
    a.up(T0 + timedelta(seconds=1))
    assert links.missing_since() == T0  # b still is not
    b.up(T0 + timedelta(seconds=2))
    assert links.missing_since() is None
    b.down(T0 + timedelta(seconds=10))
    assert links.missing_since() == T0 + timedelta(seconds=10)  # a delivers, b does not
    assert links.stats().silent_since is None  # not blind: one broker still delivers
    a.down(T0 + timedelta(seconds=20))
    assert links.missing_since() == T0 + timedelta(seconds=10)
    b.up(T0 + timedelta(seconds=30))
    assert links.missing_since() == T0 + timedelta(seconds=20)
