"""A charge session's energy: from the slot meter's own energy counter where it keeps one, from
power integrated over time where not. Pure: no I/O, no clock.

A meter's counter (SDM120, PZEM-016: ../shared/reference/hardware.md §1) counts what really flowed,
also between polls the agent missed and at any speed of a simulated cabinet; power integrated over
the agent's poll interval only estimates it. So a session's energy is the counter's difference, to
within the counter's resolution: where the integrated power agrees with it that closely, the
integral is the finer figure and is taken (a 1 Wh counter alone could be 15 % off on the 7 Wh that
an iPad back at 85 % takes); where it does not, the counter's difference stands.

A counter can also start again from 0 (it wrapped: its largest raw value is reached), be reset, or
be swapped with the meter. Each step between two readings is checked: a step backwards that is not
a wrap, or a step larger than a slot can draw in the time (``CEILING_W``), is not energy; that step
is integrated instead, and the counter's new reading is the baseline from then on. The session
says which measure it got (``EnergyMethod``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .common.protocol import EnergyMethod

__all__ = ["CEILING_W", "EnergyCounter", "SessionEnergy", "counter_step"]

# A Schuko socket gives 16 A x 230 V = 3,680 W (hardware.md §2): no slot draws more, so a counter
# step beyond that for the time between two readings is a new meter or a reset, not energy.
CEILING_W = 3680.0


@dataclass(frozen=True, slots=True)
class EnergyCounter:
    """A slot's counter, as its device profile describes it (``[energy_counter]``)."""

    resolution_wh: float  # the smallest step it makes
    wraps_at_wh: float | None = None  # where it starts again at 0; None: it never wraps

    def __post_init__(self) -> None:
        if not self.resolution_wh > 0:
            raise ValueError("resolution_wh must be > 0")
        if self.wraps_at_wh is not None and not self.wraps_at_wh > self.resolution_wh:
            raise ValueError("wraps_at_wh must be above resolution_wh")


def counter_step(previous_wh: float, current_wh: float, elapsed_s: float,
                 counter: EnergyCounter) -> float | None:
    """The energy (Wh) a counter says flowed between two readings ``elapsed_s`` apart, across a
    wrap; None when it cannot be energy: backwards without a wrap (reset, a replaced meter), or
    more than ``CEILING_W`` could give in the time (a replaced meter that had counted before)."""
    delta = current_wh - previous_wh
    if delta < 0 and counter.wraps_at_wh is not None:
        delta += counter.wraps_at_wh
    most = CEILING_W * max(elapsed_s, 0.0) / 3600.0 + counter.resolution_wh
    return delta if 0.0 <= delta <= most else None


@dataclass(slots=True)
class SessionEnergy:
    """One session's energy, one step (poll interval) at a time."""

    counter: EnergyCounter | None  # None: the slot's meter keeps no counter
    _counted_wh: float = 0.0  # the counter's differences
    _counted_integral_wh: float = 0.0  # power integrated over the same steps
    _runs: int = 0  # unbroken runs of counter steps: each is off by less than one resolution
    _in_run: bool = False
    _fallback_wh: float = 0.0  # power integrated where the counter could not say
    _fallback_steps: int = 0
    _calibration_wh: tuple[float, float] = (0.0, 0.0)  # (counter, integral) of comparable steps

    def add(self, integrated_wh: float, previous_counter_wh: float | None,
            counter_wh: float | None, elapsed_s: float, *, comparable: bool = True) -> None:
        """One step: the power integrated over it, and the counter at its start and end (None
        where there was no reading) ``elapsed_s`` apart. ``comparable``: the integral covers the
        same time as the counter (not so for a session's first step: its integral starts midway,
        its counter at the last reading before, maybe before a gap)."""
        step = None
        if self.counter is not None and previous_counter_wh is not None and counter_wh is not None:
            step = counter_step(previous_counter_wh, counter_wh, elapsed_s, self.counter)
        if step is None:
            self._fallback_wh += integrated_wh
            self._fallback_steps += 1
            self._in_run = False
            return
        if not self._in_run:
            self._runs += 1
            self._in_run = True
        self._counted_wh += step
        self._counted_integral_wh += integrated_wh
        if comparable:
            counted, integral = self._calibration_wh
            self._calibration_wh = (counted + step, integral + integrated_wh)

    @property
    def wh(self) -> float:
        """The session's energy so far: the counter's, plus the integral where the counter could
        not say. Each unbroken run of counter steps is off by less than one resolution; an integral
        inside that margin is the finer figure and is taken, one outside it is wrong (a missed
        poll, a simulator's clock) and the counter's own difference stands."""
        if self._runs == 0 or self.counter is None:
            return self._fallback_wh
        slack = self._runs * self.counter.resolution_wh
        integral, counted = self._counted_integral_wh, self._counted_wh
        agreed = integral if counted - slack <= integral <= counted + slack else counted
        return agreed + self._fallback_wh

    @property
    def integral_scale(self) -> float:
        """How much the integral of power falls short of the counter, as a factor for a part of
        the session that only the power curve can find (the taper): 1 where the two agree to
        within the counter's resolution, or without a counter."""
        counted, integral = self._calibration_wh
        if self.counter is None or integral <= 0:
            return 1.0
        if abs(counted - integral) <= self._runs * self.counter.resolution_wh:
            return 1.0
        return counted / integral

    @property
    def method(self) -> EnergyMethod:
        if self._runs == 0:
            return EnergyMethod.INTEGRATED
        return EnergyMethod.MIXED if self._fallback_steps else EnergyMethod.COUNTER
