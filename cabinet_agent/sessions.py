"""Charge sessions: from the first watt to full, removed or power cut. Pure, clock passed in.

Battery ageing needs a figure that does not depend on how empty the iPad was: the energy drawn
after the charger leaves its constant-power phase (≈80 % → 100 %, the taper) is proportional to the
battery's capacity (hardware.md §2). ``taper_wh`` is that energy, or None when the session did not
go through a whole taper (it ended early, or started already tapering).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .common.protocol import ChargeSession, SessionEnd

__all__ = ["SessionTracker"]

TAPER_FRACTION = 0.85  # power below this share of the session's plateau: the taper has begun
FLAT_FRACTION = 0.97  # a segment with both readings within 3 % of the plateau is plateau (meter noise ~1 %)
MIN_PLATEAU_S = 120.0  # a flat plateau this long proves the session started below the taper


@dataclass
class SessionTracker:
    slot: int
    started_at: datetime | None = None
    _last_at: datetime | None = None
    _last_w: float = 0.0
    energy_wh: float = 0.0
    peak_w: float = 0.0
    _plateau_w: float = 0.0
    _plateau_s: float = 0.0
    _taper_wh: float | None = None

    @property
    def active(self) -> bool:
        return self.started_at is not None

    def start(self, now: datetime, power_w: float, previous_poll: datetime | None = None) -> None:
        """A charge seen first at ``now``; it began after ``previous_poll`` (the last idle
        reading): midway is the unbiased guess, and its energy is counted from there."""
        began = now
        if previous_poll is not None and previous_poll < now:
            began = previous_poll + (now - previous_poll) / 2
        self.started_at, self._last_at, self._last_w = began, now, power_w
        self.energy_wh = power_w * (now - began).total_seconds() / 3600
        self.peak_w = power_w
        self._plateau_w, self._plateau_s, self._taper_wh = power_w, 0.0, None

    def sample(self, now: datetime, power_w: float) -> None:
        """Integrate one reading (trapezoid between polls)."""
        if self._last_at is None:
            return
        dt = (now - self._last_at).total_seconds()
        if dt <= 0:
            return
        segment_wh = (self._last_w + power_w) / 2 * dt / 3600
        self.energy_wh += segment_wh
        self.peak_w = max(self.peak_w, power_w)
        if self._taper_wh is None:
            flat = FLAT_FRACTION * self._plateau_w
            if power_w >= flat and self._last_w >= flat:
                self._plateau_w = max(self._plateau_w, power_w)
                self._plateau_s += dt
            elif power_w >= TAPER_FRACTION * self._plateau_w:
                # Declining, not yet by 15 %: the early taper — or a charge first seen inside the
                # taper, whose "plateau" is no plateau. Neither counts as plateau time.
                self._plateau_w = max(self._plateau_w, power_w)
            elif self._plateau_s >= MIN_PLATEAU_S:
                # The taper starts inside this segment: count it from where the power, taken as
                # linear between the two readings, crossed the threshold — not the whole segment,
                # which at slow or missed polls would add minutes of plateau power.
                threshold = TAPER_FRACTION * self._plateau_w
                drop = self._last_w - power_w
                share = (self._last_w - threshold) / drop if drop > 0 else 0.0
                after_s = dt * (1.0 - min(max(share, 0.0), 1.0))
                self._taper_wh = (threshold + power_w) / 2 * after_s / 3600
        else:
            self._taper_wh += segment_wh
        self._last_at, self._last_w = now, power_w

    def end(self, now: datetime, how: SessionEnd) -> ChargeSession | None:
        if self.started_at is None:
            return None
        session = ChargeSession(
            slot=self.slot, started_at=self.started_at, ended_at=now,
            duration_s=round((now - self.started_at).total_seconds(), 1),
            energy_wh=round(self.energy_wh, 3), peak_w=round(self.peak_w, 2), end=how,
            taper_wh=round(self._taper_wh, 3) if how is SessionEnd.FULL and self._taper_wh else None,
        )
        self.started_at = self._last_at = None
        return session
