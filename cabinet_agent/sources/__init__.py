"""Sensor sources: one transport per module behind small protocols (see ``base``)."""

from __future__ import annotations

from .assemble import SourceSet, open_sources
from .base import Bus, DeviceSource, Readings, Transport, register_transport, transport_factory

__all__ = [
    "Bus",
    "DeviceSource",
    "Readings",
    "SourceSet",
    "Transport",
    "open_sources",
    "register_transport",
    "transport_factory",
]
