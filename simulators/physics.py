"""One cabinet slot: a charger and, maybe, an iPad on it. Pure and deterministic.

No I/O and no wall clock: time only moves through ``SlotPhysics.step(dt)``, and the only
randomness (measurement noise) comes from the ``random.Random`` the caller passes in.
Numbers are from ``/work/shared/reference/hardware.md`` §2 "iPad and cart power"; values marked
GUESS have no source and are tunable defaults.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = [
    "IPAD_9TH_GEN_WH",
    "IPAD_MODELS",
    "MAX_STEP_S",
    "ChargerParams",
    "IPad",
    "IPadModel",
    "SlotPhysics",
    "charging_power_w",
]

IPAD_9TH_GEN_WH = 32.4  # hardware.md §2: iPad 9th gen, 32.4 Wh (oxfordspokesman.com citing Apple)


@dataclass(frozen=True, slots=True)
class IPadModel:
    """What differs between iPad models for the simulation: capacity and standby drain."""

    capacity_wh: float
    standby_drain_per_day: float  # share of capacity lost per day, full and asleep in the cabinet


# hardware.md §2: 9th gen 32.4 Wh (Apple); 10th gen ~28.6 Wh (not verified). Standby drain 1-5 %
# a day is a GUESS for managed iPads; the newer model with more background work drains faster.
IPAD_MODELS: dict[str, IPadModel] = {
    "ipad-9": IPadModel(IPAD_9TH_GEN_WH, 0.02),
    "ipad-10": IPadModel(28.6, 0.03),
}

# Longest interval integrated with one power value. At 20 W a 32.4 Wh battery gains about 0.4 %
# SoC in 30 s, so the taper and the stop at 100 % are resolved well enough, and a simulated day
# costs 2,880 steps per slot.
MAX_STEP_S = 30.0


@dataclass(frozen=True, slots=True)
class ChargerParams:
    """How an iPad on its charger draws power. Defaults: iPad 9th gen on Apple's 20 W charger."""

    # hardware.md §2: ~21 W AC on the 20 W A2347, 21-26 W measured on a 10th gen, ~10 W on a
    # 10 W charger; so 10-21 W depending on the charger.
    charge_power_w: float = 20.0
    # hardware.md §2: "fast to about 80 %, then trickle" (ijunkie.com, discussions.apple.com).
    taper_start_soc: float = 0.80
    # hardware.md §2: about 3 W just before 100 % (iPad Pro), 2 W at 95 % (iPad 2).
    taper_end_power_w: float = 2.5
    # hardware.md §2: EU 2019/1782 allows ≤0.10 W; "typical 0.02-0.08 W" is a GUESS.
    no_load_w: float = 0.05
    # hardware.md §2: 40.88 Wh into the battery for 57.2 Wh AC, about 72 % (derived).
    efficiency: float = 0.72
    # hardware.md §2: the iPad stops at 100 % and resumes below 95 % (support.apple.com/118418).
    resume_below_soc: float = 0.95
    # Share of capacity an idle iPad in the cabinet loses per hour: hardware.md §2 says a managed
    # iPad asleep on Wi-Fi may lose 1-5 % a day (GUESS); 2 %/day here, per iPad model in
    # ``IPAD_MODELS`` (an ``IPad`` with its own ``standby_drain_per_day`` overrides this).
    self_discharge_per_h: float = 0.02 / 24
    # GUESS: relative meter noise, uniform in ±noise (a cheap meter's accuracy class).
    noise: float = 0.01

    def __post_init__(self) -> None:
        checks = [
            (0 < self.charge_power_w <= 100, "charge_power_w must be in (0, 100] W"),
            (0 <= self.taper_start_soc < 1, "taper_start_soc must be in [0, 1)"),
            (0 < self.taper_end_power_w <= self.charge_power_w,
             "taper_end_power_w must be in (0, charge_power_w]"),
            (0 <= self.no_load_w < self.taper_end_power_w,
             "no_load_w must be in [0, taper_end_power_w)"),
            (0 < self.efficiency <= 1, "efficiency must be in (0, 1]"),
            (0 < self.resume_below_soc <= 1, "resume_below_soc must be in (0, 1]"),
            (0 <= self.self_discharge_per_h < 1, "self_discharge_per_h must be in [0, 1)"),
            (0 <= self.noise < 0.5, "noise must be in [0, 0.5)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def charging_power_w(soc: float, params: ChargerParams) -> float:
    """AC power (W, noise-free) of an iPad that is charging at state of charge ``soc`` (0..1).

    Constant power below ``taper_start_soc``, then a straight line down to ``taper_end_power_w``
    at 100 %. With the defaults a 32.4 Wh iPad goes 0 → 100 % in about 2.9 h, close to the
    3 h 08 measured for a 40.88 Wh iPad Pro (hardware.md §2).
    """
    if soc >= 1.0:
        return 0.0
    if soc < params.taper_start_soc:
        return params.charge_power_w
    done = (soc - params.taper_start_soc) / (1.0 - params.taper_start_soc)
    return params.charge_power_w + (params.taper_end_power_w - params.charge_power_w) * done


@dataclass(slots=True)
class IPad:
    """A tablet: its battery and the charge controller's one bit of memory (``holding``)."""

    asset_tag: str
    soc: float = 0.5
    capacity_wh: float = IPAD_9TH_GEN_WH
    # Remaining capacity as a share of design capacity; 0.75 is a worn battery (charges in less
    # energy and time, which is how a later feature spots it).
    health: float = 1.0
    # Fault injection: the tablet is in the slot but never draws power (dead board, bad cable).
    broken: bool = False
    # Share of capacity lost per day while idle; None: the charger's ``self_discharge_per_h``.
    standby_drain_per_day: float | None = None
    # The charge ended at 100 %; the iPad waits until SoC falls below the resume threshold.
    holding: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.soc <= 1.0 or math.isnan(self.soc):
            raise ValueError(f"soc must be in [0, 1], not {self.soc}")
        if not self.capacity_wh > 0:
            raise ValueError(f"capacity_wh must be positive, not {self.capacity_wh}")
        if not 0.0 < self.health <= 1.0:
            raise ValueError(f"health must be in (0, 1], not {self.health}")
        if self.soc >= 1.0:
            self.holding = True  # plugged in when already full: nothing to do

    @property
    def usable_wh(self) -> float:
        return self.capacity_wh * self.health


class SlotPhysics:
    """One charger socket. ``power_w`` is what a meter reads, ``energy_wh`` the AC energy drawn."""

    def __init__(self, params: ChargerParams | None = None, ipad: IPad | None = None) -> None:
        self.params = params or ChargerParams()
        self.ipad = ipad
        self.mains_on = True
        self.energy_wh = 0.0
        self.power_w = self.draw_w()

    @property
    def present(self) -> bool:
        return self.ipad is not None

    @property
    def charging(self) -> bool:
        """True while the slot draws more than the charger's no-load power."""
        ipad = self.ipad
        return (self.mains_on and ipad is not None and not ipad.broken and not ipad.holding
                and ipad.soc < 1.0)

    @property
    def full(self) -> bool:
        """The iPad finished its charge and has not resumed (between top-up pulses)."""
        return self.ipad is not None and not self.ipad.broken and self.ipad.holding

    def draw_w(self) -> float:
        """AC power drawn right now, noise-free."""
        if not self.mains_on:
            return 0.0
        if self.charging:
            assert self.ipad is not None
            return charging_power_w(self.ipad.soc, self.params)
        return self.params.no_load_w

    def insert(self, ipad: IPad) -> None:
        if self.ipad is not None:
            raise ValueError("slot is occupied")
        self.ipad = ipad
        self.power_w = self.draw_w()

    def remove(self) -> IPad:
        if self.ipad is None:
            raise ValueError("slot is empty")
        ipad, self.ipad = self.ipad, None
        self.power_w = self.draw_w()
        return ipad

    def set_mains(self, on: bool) -> None:
        if on and not self.mains_on and self.ipad is not None and self.ipad.soc < 1.0:
            # GUESS: power returning looks like a fresh plug-in to the iPad, which then charges
            # to 100 % again instead of waiting for the 95 % threshold.
            self.ipad.holding = False
        self.mains_on = on
        self.power_w = self.draw_w()

    def step(self, dt_s: float, rng: random.Random) -> float:
        """Advance ``dt_s`` simulated seconds; returns the AC energy drawn (Wh) in that time."""
        if dt_s < 0 or math.isnan(dt_s):
            raise ValueError(f"dt_s must be >= 0, not {dt_s}")
        remaining = dt_s
        drawn = 0.0
        while remaining > 0:
            used, wh = self._advance(remaining)
            drawn += wh
            remaining -= used
        self.energy_wh += drawn
        self.power_w = self._measure(rng)
        return drawn

    def _advance(self, h: float) -> tuple[float, float]:
        """Integrate up to ``h`` seconds exactly, stopping where the regime changes (the taper
        begins, the iPad is full, a top-up is due); returns (seconds used, Wh drawn).

        Exact, so a step of any length costs a few regimes, not one substep per 30 s: below the
        taper the draw is constant; in the taper it falls linearly with the charge, so the charge
        follows an exponential; idle, the charge falls linearly with the standby drain."""
        ipad = self.ipad
        if ipad is None or ipad.broken:
            return h, self.draw_w() * h / 3600.0
        p = self.params
        if self.charging:
            k = p.efficiency / 3600.0 / ipad.usable_wh  # charge gained per second and watt
            soc0 = ipad.soc
            if soc0 < p.taper_start_soc:
                rate = p.charge_power_w * k
                t = min(h, (p.taper_start_soc - soc0) / rate)
                ipad.soc = p.taper_start_soc if t < h else soc0 + rate * t  # reached the taper?
                return t, p.charge_power_w * t / 3600.0
            # Taper: P(soc) = a + b·soc (b < 0), d soc/dt = k·P, so u = soc + a/b decays as e^(k·b·t).
            b = (p.taper_end_power_w - p.charge_power_w) / (1.0 - p.taper_start_soc)
            a = p.charge_power_w - b * p.taper_start_soc
            u0, u_full = soc0 + a / b, 1.0 + a / b
            t_full = math.log(u_full / u0) / (k * b)
            if h < t_full:
                ipad.soc = min(u0 * math.exp(k * b * h) - a / b, 1.0)
                return h, (ipad.soc - soc0) / k / 3600.0
            ipad.soc, ipad.holding = 1.0, True  # full: from now on it waits for the resume threshold
            return t_full, (1.0 - soc0) / k / 3600.0
        return self._idle(ipad, h)

    def _idle(self, ipad: IPad, h: float) -> tuple[float, float]:
        """Self-discharge while not charging (mains off, or holding at full), up to the moment a
        full iPad falls below the resume threshold (then its top-up pulse starts)."""
        per_s = (self.params.self_discharge_per_h if ipad.standby_drain_per_day is None
                 else ipad.standby_drain_per_day / 24.0) / 3600.0
        t = h
        if ipad.holding and per_s > 0:
            t = min(h, max(0.0, (ipad.soc - self.params.resume_below_soc) / per_s))
        ipad.soc = max(0.0, ipad.soc - per_s * t)
        if ipad.holding and t < h:
            ipad.soc = min(ipad.soc, math.nextafter(self.params.resume_below_soc, 0.0))
            ipad.holding = False  # the top-up pulse starts now
        return t, (self.params.no_load_w if self.mains_on else 0.0) * t / 3600.0

    def _measure(self, rng: random.Random) -> float:
        draw = self.draw_w()
        if draw == 0.0 or self.params.noise == 0.0:
            return draw
        return draw * (1.0 + rng.uniform(-self.params.noise, self.params.noise))
