"""Exponential back-off with full jitter, so 138 cabinets do not reconnect in lockstep."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    def __init__(self, initial_s: float, maximum_s: float, rng: random.Random | None = None) -> None:
        if initial_s <= 0 or maximum_s < initial_s:
            raise ValueError("need 0 < initial_s <= maximum_s")
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self._attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.maximum_s, self.initial_s * 2 ** self._attempt)
        self._attempt += 1
        # Half fixed, half random: never shorter than half the ceiling, never in lockstep.
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self._attempt = 0
