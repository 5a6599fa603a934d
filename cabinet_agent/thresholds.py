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
    # A full iPad stops at 100 % and tops up below 95 % (support.apple.com/118418). How soon depends
    # on its standby drain: 1-5 % a day for a managed iPad asleep on Wi-Fi (GUESS, hardware.md §2).
    # The *slowest* drain of the iPads in this cabinet sets how long a full iPad may stay silent.
    standby_drain_per_day: float = 0.01
    resume_below_soc: float = 0.95
    # Charged and certainly present (no door since) without a pulse this long: a fault. None: the
    # evidence window.
    no_topup_s: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.idle_max_w < self.charging_min_w <= self.removal_drop_w <= self.pulse_max_w:
            raise ValueError("need 0 <= idle_max_w < charging_min_w <= removal_drop_w <= pulse_max_w")
        if self.rating_w <= self.pulse_max_w:
            raise ValueError("rating_w must be above pulse_max_w")
        if not 0 < self.standby_drain_per_day < 1:
            raise ValueError("standby_drain_per_day must be in (0, 1): a share of capacity per day")
        if not 0 < self.resume_below_soc < 1:
            raise ValueError("resume_below_soc must be in (0, 1)")

    @property
    def evidence_window_s(self) -> float:
        """A full iPad that is still in its slot draws again within this much supplied time: from
        100 % down to the resume threshold at the slowest standby drain. No draw for this long is
        evidence that the slot is empty (power-only cabinets), or a fault (when it cannot have left)."""
        return (1.0 - self.resume_below_soc) / self.standby_drain_per_day * 86400.0

    @property
    def topup_limit_s(self) -> float:
        return self.no_topup_s if self.no_topup_s is not None else self.evidence_window_s
