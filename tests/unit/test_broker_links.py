"""When a collector with several brokers judges which cabinet (server/brokers.py), with a fake
clock: silence counts only over time its connections delivered, and a cabinet last heard through
a connection that is down is out of earshot — not judged — until it is heard again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server.brokers import BrokerLinks, Earshot, Unheard
from server.ingest import MqttStats

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


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
    links = BrokerLinks([a], clock)
    assert links.receiving_since() is None
    a.up(T0 + timedelta(seconds=1))
    assert links.receiving_since() == T0 + timedelta(seconds=1)
    a.down(T0 + timedelta(seconds=5))
    clock.now = T0 + timedelta(hours=1)
    assert links.receiving_since() is None  # nothing is heard: nothing is judged
    assert links.deaf() is None and links.unheard() == []  # one broker: no cabinet apart


def _heard(earshot: Earshot, index: int, site: str, cabinet: str, retained: bool = False,
           channel: str = "telemetry") -> None:
    earshot.hearing(index, lambda topic, payload, retained: None)(
        f"ladewache/v1/{site}/{cabinet}/{channel}", b"{}", retained)


def test_a_cabinet_is_out_of_earshot_while_the_broker_it_was_last_heard_through_is() -> None:
    a, b, clock, earshot = Connection("a:1883"), Connection("b:1883"), Clock(), Earshot()
    links = BrokerLinks([a, b], clock, earshot)
    a.up(T0)
    b.up(T0 + timedelta(seconds=2))
    assert links.receiving_since() == T0 + timedelta(seconds=2)  # from when both are heard
    _heard(earshot, 0, "gs-park", "k1")
    _heard(earshot, 1, "gs-park", "k2")
    assert links.deaf() is None  # every connection delivers
    lost = T0 + timedelta(minutes=10)
    a.down(lost)
    clock.now = lost + timedelta(hours=2)  # however long: no grace ends it
    deaf = links.deaf()
    assert deaf is not None
    assert deaf(("gs-park", "k1"))  # at A, or moved and not yet heard at B: not judged
    assert not deaf(("gs-park", "k2"))  # heard through B: judged as ever
    assert deaf(("gs-park", "k3"))  # never heard: it may be at A
    # silence is not counted from A's loss for B's cabinets: B has delivered all along
    assert links.receiving_since() == T0 + timedelta(seconds=2)
    assert links.unheard() == [Unheard("a:1883", lost, [("gs-park", "k1")])]
    _heard(earshot, 1, "gs-park", "k1")  # its agent moved to B
    assert not links.deaf()(("gs-park", "k1"))  # type: ignore[misc]
    assert links.unheard() == [Unheard("a:1883", lost, [])]
    stats = links.stats()
    assert not stats.connected and stats.last_error == "a:1883: connection lost"
    a.up(clock.now)
    assert links.deaf() is None and links.unheard() == []
    assert links.receiving_since() == clock.now  # silence counts from A's return at the earliest


def test_a_retained_copy_places_a_cabinet_but_never_moves_one() -> None:
    """On subscribing, each broker sends what it keeps: the old broker's copy of a cabinet that
    moved says where it was, not where it is."""
    a, b, clock, earshot = Connection("a:1883"), Connection("b:1883"), Clock(), Earshot()
    links = BrokerLinks([a, b], clock, earshot)
    a.up(T0)
    b.up(T0)
    _heard(earshot, 1, "gs-park", "k1")  # live at B
    _heard(earshot, 0, "gs-park", "k1", retained=True, channel="state")  # A's old copy
    _heard(earshot, 0, "gs-park", "k2", retained=True, channel="state")  # known only from A
    b.down(T0 + timedelta(seconds=5))
    deaf = links.deaf()
    assert deaf is not None and deaf(("gs-park", "k1")) and not deaf(("gs-park", "k2"))


def test_what_is_not_a_cabinet_topic_places_nothing_and_the_map_is_bounded() -> None:
    a, b, earshot = Connection("a:1883"), Connection("b:1883"), Earshot(max_cabinets=2)
    links = BrokerLinks([a, b], Clock(), earshot)
    handled: list[str] = []
    earshot.hearing(0, lambda topic, payload, retained: handled.append(topic))("junk/topic", b"", False)
    assert handled == ["junk/topic"] and earshot.placed() == []  # handled (and refused) as ever
    for n in range(3):
        _heard(earshot, 0, "gs-park", f"k{n}")
    _heard(earshot, 1, "gs-park", "k0")  # a placed cabinet still moves when the map is full
    assert sorted(earshot.placed()) == [(("gs-park", "k0"), 1), (("gs-park", "k1"), 0)]
    a.up(T0)
    b.down(T0)
    assert links.unheard() == [Unheard("b:1883", T0, [("gs-park", "k0")])]


def test_without_an_earshot_a_broker_down_leaves_every_cabinet_unjudged() -> None:
    a, b = Connection("a:1883"), Connection("b:1883")
    links = BrokerLinks([a, b], Clock())
    a.up(T0)
    deaf = links.deaf()
    assert deaf is not None and deaf(("gs-park", "k1"))


def test_nothing_heard_is_not_receiving() -> None:
    a, b, clock = Connection("a:1883"), Connection("b:1883"), Clock()
    links = BrokerLinks([a, b], clock, Earshot())
    a.down(T0)
    b.down(T0)
    clock.now = T0 + timedelta(hours=1)
    assert links.receiving_since() is None


def test_silent_only_while_no_broker_delivers_and_then_since_the_last_was_lost() -> None:
    """What the dashboard's "may be out of date" notice reads (server/web/context.py)."""
    a, b = Connection("a:1883"), Connection("b:1883")
    links = BrokerLinks([a, b], Clock())
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
    links = BrokerLinks([a, b], clock)
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
