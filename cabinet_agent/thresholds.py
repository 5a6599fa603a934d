"""Classification thresholds: defaults from ../shared/reference/hardware.md §2, per cabinet model
overridable in its ``[thresholds]`` table."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Thresholds"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    idle_max_w: float = 0.5  # no-load 0.1 W plus the meter's 0.1 W resolution and noise
    charging_min_w: float = 1.0  # between the two: hysteresis band, the state stays
    removal_drop_w: float = 5.0  # tapering ends near 2–3 W; a drop from above this is a removal
    pulse_max_w: float = 8.0  # a top-up from 95 % draws about 7 W in the taper (GUESS, hardware.md)
    rating_w: float = 30.0  # above this the slot draws more than a 20 W charger can (GUESS)
    max_charge_s: float = 8 * 3600  # 12.9" iPad on 12 W needs 4.5–5 h (hardware.md); GUESS margin
    frozen_polls: int = 30  # the same reading this often while others move: a frozen channel
    no_topup_s: float = 3 * 86400  # a full iPad tops up below 95 %: silence for days is a fault

    def __post_init__(self) -> None:
        if not 0 <= self.idle_max_w < self.charging_min_w <= self.removal_drop_w <= self.pulse_max_w:
            raise ValueError("need 0 <= idle_max_w < charging_min_w <= removal_drop_w <= pulse_max_w")
        if self.rating_w <= self.pulse_max_w:
            raise ValueError("rating_w must be above pulse_max_w")
