"""Sensor sources: one transport per module behind the small ``Bus`` protocol."""

from __future__ import annotations

from .base import Bus, BusFactory, register_transport, transport_factory

__all__ = ["Bus", "BusFactory", "register_transport", "transport_factory"]
