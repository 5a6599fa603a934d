"""Sensor sources: one transport per module behind small protocols (see ``base``)."""

from __future__ import annotations

from .assemble import SourceSet, open_sources
from .base import TRANSPORTS, Bus, DeviceSource, Readings, Transport, transport_factory

__all__ = [
    "TRANSPORTS",
    "Bus",
    "DeviceSource",
    "Readings",
    "SourceSet",
    "Transport",
    "open_sources",
    "transport_factory",
]
