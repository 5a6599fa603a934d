"""The auth tables of the store (none yet: issue 18 moves them here)."""

from __future__ import annotations

from .base import metadata

__all__ = ["metadata"]
