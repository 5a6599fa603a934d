"""Which broker the agent tries next, and how long it waits first: the failover policy, pure.

The brokers are ``[mqtt] host:port`` and then ``[mqtt] failover`` in order. The rules, as an
installer sees them:

* **Sticky.** The agent stays on the broker it reached until that connection breaks; it never
  goes back to the primary on its own (no flapping, one broker's retained messages stay current).
* **Next broker at once.** After a failed attempt (unreachable, refused, closed before the
  broker accepted) or a lost connection, it tries the next broker in the list right away,
  round robin.
* **Back-off per round.** Only when it comes back to the broker the round started from — every
  broker tried once without a connection that lasted — does it wait, with the growing delay of
  ``reconnect_min_s`` … ``reconnect_max_s`` (jittered). With one broker that is every attempt, as
  before failover existed.
* **A connection must last.** One that breaks within ``reconnect_min_s`` of being made counts as a
  failed attempt, so brokers that accept and drop the agent at once (a login used twice, say)
  cannot make it spin between them without a pause.

No I/O and a clock passed in, so the policy is tested as a timeline (tests/unit/test_agent_failover.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .common.backoff import Backoff
from .common.broker_address import BrokerAddress

__all__ = ["BrokerRotation"]


class BrokerRotation:
    def __init__(self, brokers: Sequence[BrokerAddress], backoff: Backoff, *, settle_s: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if not brokers:
            raise ValueError("need at least one broker")
        self._brokers = tuple(brokers)
        self._backoff = backoff
        self._settle_s = settle_s
        self._monotonic = monotonic
        self._index = 0
        self._round_start = 0  # where the current round began: coming back here means waiting
        self._up_since: float | None = None

    @property
    def brokers(self) -> tuple[BrokerAddress, ...]:
        return self._brokers

    @property
    def current(self) -> BrokerAddress:
        """The broker being tried, or the one connected to."""
        return self._brokers[self._index]

    @property
    def position(self) -> int:
        """0 for host:port, n for the n-th failover broker."""
        return self._index

    def connected(self) -> None:
        """The current broker accepted the connection (CONNACK)."""
        self._up_since = self._monotonic()

    def failed(self) -> float:
        """The attempt at the current broker failed, or its connection broke. Moves on to the next
        broker; returns how many seconds to wait before trying it (0: at once)."""
        up_since, self._up_since = self._up_since, None
        if up_since is not None and self._monotonic() - up_since >= self._settle_s:
            # It worked: a new round starts here, and its back-off from the beginning.
            self._backoff.reset()
            self._round_start = self._index
        self._index = (self._index + 1) % len(self._brokers)
        if self._index == self._round_start:
            return self._backoff.next_delay()
        return 0.0
