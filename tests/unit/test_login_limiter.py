"""The login limiter as a timeline on a fake monotonic clock (issue 15): a pause per (user, client
address) and per address, never per user alone; entries expire; memory stays bounded."""

from __future__ import annotations

import pytest

from server.auth.limiter import LoginLimiter, address_key

A, B = "198.51.100.7", "203.0.113.9"


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(limiter: LoginLimiter, name: str, address: str) -> float:
    """One wrong password: the limiter's answer before the attempt (0 = it was let through)."""
    wait = limiter.acquire(name, address)
    if wait == 0:
        limiter.failed(name)
    return wait


def test_failures_from_one_address_do_not_lock_the_user_out_elsewhere() -> None:
    clock = FakeMonotonic()
    limiter = LoginLimiter(per_pair=5, per_address=30, window_s=300, monotonic=clock)
    assert [fail(limiter, "lehrerin", A) for _ in range(5)] == [0.0] * 5
    assert limiter.acquire("lehrerin", A) == 300  # paused: this user from this address
    assert limiter.acquire("lehrerin", B) == 0  # the same user from elsewhere: not at all
    assert limiter.acquire("Lehrerin ", A) == 300  # one user, however the name is typed


def test_the_pause_slides_with_the_window_and_then_expires() -> None:
    clock = FakeMonotonic()
    limiter = LoginLimiter(per_pair=3, window_s=100, monotonic=clock)
    for step in (0, 10, 20):
        clock.now = 1000 + step
        assert fail(limiter, "tech", A) == 0
    clock.now = 1050
    assert limiter.acquire("tech", A) == pytest.approx(50)  # until the first failure is 100 s old
    clock.now = 1100
    assert limiter.acquire("tech", A) == 0  # one failure left the window: one more try
    limiter.failed("tech")
    assert limiter.acquire("tech", A) == pytest.approx(10)  # the second failure leaves at 1110
    clock.now = 1300
    assert limiter.acquire("tech", A) == 0


def test_one_address_trying_many_names_is_paused() -> None:
    clock = FakeMonotonic()
    limiter = LoginLimiter(per_pair=5, per_address=4, window_s=60, monotonic=clock)
    for n in range(4):
        assert fail(limiter, f"user{n}", A) == 0
    assert limiter.acquire("user9", A) == 60  # password spraying: a fifth name is not tried
    assert limiter.acquire("user9", B) == 0


def test_a_success_forgets_the_pairs_failures_but_not_the_addresses() -> None:
    clock = FakeMonotonic()
    limiter = LoginLimiter(per_pair=3, per_address=4, window_s=60, monotonic=clock)
    for _ in range(2):
        fail(limiter, "mallory", A)
    assert limiter.acquire("mallory", A) == 0
    limiter.succeeded("mallory", A)  # their own account: the pair starts afresh …
    assert [fail(limiter, "mallory", A) for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("lehrerin", A) == 60  # … but the address keeps its 4 failures


def test_parallel_attempts_count_before_their_answer() -> None:
    """Attempts let through count at once: ten requests in flight cannot all pass the check
    before the first failure is known."""
    limiter = LoginLimiter(per_pair=5, monotonic=FakeMonotonic())
    let_through = [limiter.acquire("lehrerin", A) == 0 for _ in range(10)]
    assert let_through == [True] * 5 + [False] * 5
    limiter.cancel("lehrerin", A)  # one of them was not tried after all (server busy)
    assert limiter.acquire("lehrerin", A) == 0


def test_the_users_failures_from_all_addresses_are_counted_but_never_block() -> None:
    clock = FakeMonotonic()
    limiter = LoginLimiter(per_pair=5, window_s=60, user_alarm=20, monotonic=clock)
    tallies = []
    for n in range(25):  # a botnet: every address tries once
        address = f"192.0.2.{n}"
        assert limiter.acquire("lehrerin", address) == 0
        tallies.append(limiter.failed("lehrerin"))
    assert tallies[:3] == [1, 2, 3] and tallies[-1] == 20  # capped: a count for the log
    assert limiter.acquire("lehrerin", B) == 0  # still no lockout for her own address
    clock.now += 60
    assert limiter.acquire("lehrerin", "192.0.2.99") == 0
    assert limiter.failed("lehrerin") == 1  # the window moved on


def test_memory_is_bounded_and_quiet_keys_expire() -> None:
    clock = FakeMonotonic()
    limiter = LoginLimiter(per_pair=5, per_address=30, window_s=60, max_keys=100, monotonic=clock)
    for n in range(1000):
        fail(limiter, f"name{n}", f"10.0.{n // 250}.{n % 250}")
    assert limiter.keys() <= 3 * 100
    clock.now += 61
    fail(limiter, "lehrerin", A)  # a new failure sweeps what has left the window
    assert limiter.keys() == 3


@pytest.mark.parametrize(("host", "key"), [
    ("198.51.100.7", "198.51.100.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),  # one host's /64 is one address
    ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
    ("::ffff:198.51.100.7", "198.51.100.7"),
    ("testclient", "?"), (None, "?"), ("", "?"),
])
def test_address_keys(host: str | None, key: str) -> None:
    assert address_key(host) == key


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LoginLimiter(per_pair=0)
    with pytest.raises(ValueError):
        LoginLimiter(window_s=0)
