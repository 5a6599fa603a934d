"""The simulator's exceptions; the control API maps each one to an HTTP status."""

from __future__ import annotations

__all__ = ["SimError", "SlotStateError", "UnknownDeviceError", "UnknownSlotError"]


class SimError(Exception):
    """Base of every error the simulator raises on purpose."""


class UnknownSlotError(SimError):
    """The slot number is not in the cabinet (slots count from 1)."""


class UnknownDeviceError(SimError):
    """The cabinet model has no device of that name."""


class SlotStateError(SimError):
    """The operation does not fit the slot's state: insert into a full slot, remove from an empty one."""
