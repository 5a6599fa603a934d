"""Charge sessions: from the first watt to full, removed or power cut. Pure, clock passed in.

The energy comes from the slot meter's own counter where it keeps one, else from power integrated
over time (``energy.SessionEnergy``); the session says which (``energy_method``).

Battery ageing needs a figure that does not depend on how empty the iPad was: the energy drawn
after the charger leaves its constant-power phase (≈80 % → 100 %, the taper) is proportional to the
battery's capacity (hardware.md §2). ``taper_wh`` is that energy, or None when the session did not
go through a whole taper (it ended early, or started already tapering). Where the taper begins is
found in the power curve; its energy is the integral from there, scaled by what the counter says
the integral misses (``SessionEnergy.integral_scale``: 1 without a counter, or where they agree).

``time_scale``: seconds of the cabinet's clock per second of ``now``. 1 for a real cabinet; N for a
simulator running N times faster (``[simulation] speed``): durations and integrals are then in the
simulation's seconds, while every timestamp stays on the agent's clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .common.protocol import ChargeSession, SessionEnd
from .energy import EnergyCounter, SessionEnergy

__all__ = ["CounterReading", "SessionTracker"]

TAPER_FRACTION = 0.85  # power below this share of the session's plateau: the taper has begun
FLAT_FRACTION = 0.97  # a segment with both readings within 3 % of the plateau is plateau (meter noise ~1 %)
MIN_PLATEAU_S = 120.0  # a flat plateau this long proves the session started below the taper

CounterReading = tuple[datetime, float]  # when, and what the slot's energy counter read (Wh)


@dataclass
class SessionTracker:
    slot: int
    counter: EnergyCounter | None = None  # the slot meter's energy counter; None: it has none
    time_scale: float = 1.0
    started_at: datetime | None = None
    _last_at: datetime | None = None
    _last_w: float = 0.0
    _last_counter_wh: float | None = None  # the counter at _last_at; None: no reading then
    energy: SessionEnergy = field(init=False)
    peak_w: float = 0.0
    _plateau_w: float = 0.0
    _plateau_s: float = 0.0
    _taper_wh: float | None = None

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError("time_scale must be > 0")
        self.energy = SessionEnergy(self.counter)

    @property
    def active(self) -> bool:
        return self.started_at is not None

    @property
    def energy_wh(self) -> float:
        return self.energy.wh

    def _seconds(self, since: datetime, until: datetime) -> float:
        return (until - since).total_seconds() * self.time_scale

    def start(self, now: datetime, power_w: float, previous_poll: datetime | None = None,
              counter_wh: float | None = None, previous_counter: CounterReading | None = None
              ) -> None:
        """A charge seen first at ``now``; it began after ``previous_poll`` (the last idle
        reading): midway is the unbiased guess, and its energy is integrated from there. The
        counter counts from its last reading before (``previous_counter``, maybe older than the
        last poll when readings were missed), so what flowed unseen belongs to this session."""
        began = now
        if previous_poll is not None and previous_poll < now:
            began = previous_poll + (now - previous_poll) / 2
        self.started_at, self._last_at, self._last_w = began, now, power_w
        self.energy = SessionEnergy(self.counter)
        before_wh, since = (None, now) if previous_counter is None else (previous_counter[1],
                                                                         previous_counter[0])
        self.energy.add(power_w * self._seconds(began, now) / 3600, before_wh, counter_wh,
                        self._seconds(since, now), comparable=False)
        self._last_counter_wh = counter_wh
        self.peak_w = power_w
        self._plateau_w, self._plateau_s, self._taper_wh = power_w, 0.0, None

    def sample(self, now: datetime, power_w: float, counter_wh: float | None = None) -> None:
        """One reading: the step since the last one (trapezoid of the power; the counter's
        difference where both readings have one)."""
        if self._last_at is None:
            return
        dt = self._seconds(self._last_at, now)
        if dt <= 0:
            return
        segment_wh = (self._last_w + power_w) / 2 * dt / 3600
        self.energy.add(segment_wh, self._last_counter_wh, counter_wh, dt)
        self._last_counter_wh = counter_wh
        self.peak_w = max(self.peak_w, power_w)
        self._follow_taper(power_w, dt, segment_wh)
        self._last_at, self._last_w = now, power_w

    def _follow_taper(self, power_w: float, dt: float, segment_wh: float) -> None:
        if self._taper_wh is not None:
            self._taper_wh += segment_wh
            return
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

    def end(self, now: datetime, how: SessionEnd) -> ChargeSession | None:
        if self.started_at is None:
            return None
        energy_wh = self.energy.wh
        taper_wh = None
        if how is SessionEnd.FULL and self._taper_wh:
            taper_wh = round(self._taper_wh * self.energy.integral_scale, 3)
        session = ChargeSession(
            slot=self.slot, started_at=self.started_at, ended_at=now,
            duration_s=round(self._seconds(self.started_at, now), 1),
            energy_wh=round(energy_wh, 3), peak_w=round(self.peak_w, 2), end=how,
            taper_wh=taper_wh, energy_method=self.energy.method,
        )
        self.started_at = self._last_at = self._last_counter_wh = None
        return session
