"""How many examples a property test draws: its own number, times ``LADEWACHE_EXPLORE_FACTOR``.

``make test`` draws each test's usual number (fresh draws locally, replayed ones in CI);
``make test-explore`` multiplies them, so a hole that only a rare draw finds is found before a
newcomer's ``make test`` stumbles on it (issue 14)."""

from __future__ import annotations

import os

__all__ = ["FACTOR", "examples"]

FACTOR = max(1, int(os.environ.get("LADEWACHE_EXPLORE_FACTOR", "1") or "1"))


def examples(n: int) -> int:
    return n * FACTOR
