"""Waiting out Modbus RTU's silent interval: never shorter than t3.5, however the wait is split."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from cabinet_agent.sources.serial_port import SilentInterval, frame_gap_s, sleep_until


@pytest.mark.parametrize("ahead_s", [0.0, 0.00005, 0.0004, 0.0017, 0.0032])
def test_sleep_until_never_returns_before_the_deadline(ahead_s: float) -> None:
    for _ in range(20):
        deadline = time.monotonic() + ahead_s
        sleep_until(deadline)
        assert time.monotonic() >= deadline


def test_sleep_until_a_past_deadline_returns_at_once() -> None:
    started = time.monotonic()
    sleep_until(99.0, lambda: 100.0)  # a clock that stands still: any sleep or spin would hang
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("baud", [9600, 19200, 115200])
def test_a_frame_starts_no_earlier_than_t35_after_the_last_one(baud: int) -> None:
    gap = frame_gap_s(baud, 11)
    silence = SilentInterval(gap)

    async def frames(n: int) -> list[float]:
        starts = []
        for _ in range(n):
            await silence.approach()  # the event loop's share of the wait
            silence.wait_out()  # the rest, right before the frame is written
            starts.append(time.monotonic())
            silence.frame_ended(time.monotonic())
        return starts

    starts = asyncio.run(frames(30))
    assert silence.until == pytest.approx(starts[-1] + gap, abs=0.001)
    assert min(b - a for a, b in itertools.pairwise(starts)) >= gap


def test_an_interval_already_over_costs_no_wait() -> None:
    silence = SilentInterval(0.004, clock=lambda: 50.0)
    silence.frame_ended(10.0)  # long ago on this clock

    async def approach_and_wait() -> None:
        await silence.approach()
        silence.wait_out()

    started = time.monotonic()
    asyncio.run(approach_and_wait())
    assert silence.until == 10.004
    assert time.monotonic() - started < 0.5  # no sleep of the clock's 40 s
