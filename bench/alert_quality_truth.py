"""Ground truth of the alert-quality benchmark: what some rule must report (``Expectation``), the
intervals in which a rule's condition really holds (``Ledger``), and how a cabinet run records
them at its polls, checks and charges (``GroundTruth``, a part of ``CabinetRun``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from alert_quality_plan import ZONE, Incident

from cabinet_agent.common.protocol import Certainty, SlotState

__all__ = ["MORNING_CHECK", "REAL_CHARGE_BELOW", "RETURN_CHECK", "Expectation", "GroundTruth", "Ledger",
           "local_ts", "utc"]

REAL_CHARGE_BELOW = 0.93  # a charge that starts below this is not a top-up pulse (those start at 95 %)
MORNING_CHECK, RETURN_CHECK = time(7, 0), time(16, 30)


def utc(t: float) -> datetime:
    """A benchmark time (seconds since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(t, UTC)


def local_ts(day: date, at: time) -> float:
    return datetime.combine(day, at, tzinfo=ZONE).timestamp()


@dataclass
class Expectation:
    """A condition some rule must report: ``knowable`` is when the hardware could first know it
    (None: it cannot), ``end`` when it stopped being true."""

    rule: str
    site: str
    cabinet: str
    sub: str  # slot number, device name or ""
    origin: str  # incident kind, or "forgotten" / "charging_at_check" (from the scenario)
    hardware: str
    start: float
    end: float
    knowable: float | None = None
    why_not: str = ""
    incident: int | None = None
    # Not knowable, but shown: at the check the agent said "charged, probable" — the dashboard's
    # and the digest's "not confirmed since …" list (power-only cabinets)
    listed: bool = False
    unjudged: bool = False  # … or said "cannot tell" (shown as such: agent started since)


@dataclass
class Ledger:
    """Ground truth of one process: expectations, and intervals in which a rule's condition is
    true (``(family, site, cabinet, sub) -> [[start, end], ...]``; end None while open)."""

    expectations: list[Expectation] = field(default_factory=list)
    intervals: dict[tuple[str, str, str, str], list[list[float | None]]] = field(default_factory=dict)

    def open(self, family: str, site: str, cabinet: str, sub: str, t: float) -> None:
        spans = self.intervals.setdefault((family, site, cabinet, sub), [])
        if not spans or spans[-1][1] is not None:
            spans.append([t, None])

    def close(self, family: str, site: str, cabinet: str, sub: str, t: float) -> None:
        spans = self.intervals.get((family, site, cabinet, sub))
        if spans and spans[-1][1] is None:
            spans[-1][1] = t

    def span(self, family: str, site: str, cabinet: str, sub: str, start: float, end: float) -> None:
        self.intervals.setdefault((family, site, cabinet, sub), []).append([start, end])


class GroundTruth:
    """The ground truth a ``CabinetRun`` keeps: charges, checks, and what they make expected.
    A part of ``CabinetRun`` (it reads the run's physics, agent and plan)."""

    def _end_episode(self, i: int, t: float) -> None:
        episode = self.episode[i]
        if episode is None:
            return
        self.episode[i] = None
        for exp in self.too_long.pop(i + 1, []):
            exp.end = t
            if exp.knowable is not None and exp.knowable > t:  # taken out before it was too long
                exp.knowable, exp.why_not = None, "the charge ended before it was too long"
        self.ledger.close("too_long", self.spec.site, self.spec.cabinet, str(i + 1), t)
        self.ledger.close("not_charged", self.spec.site, self.spec.cabinet, str(i + 1), t)

    def _measured_charge(self, slot: int, t: float) -> None:
        """The agent reported a full charge with its taper energy: what battery ageing compares.
        A worn battery is knowable once its baseline and recent medians exist (5 + 5 measured
        charges, AgeingPolicy) and three of the recent ones are worn (the median moves)."""
        ipad = self.slots[slot - 1].ipad
        if ipad is None:
            return
        key = id(ipad)
        count = self.full_charges[key] = self.full_charges.get(key, 0) + 1
        worn = self.worn.get(key)
        if worn is not None and worn[0].knowable is None and count - worn[1] >= 3 and count >= 10:
            worn[0].knowable = t

    # -- incidents -------------------------------------------------------------------------------
    def _expect(self, rule: str, incident: Incident, t: float, sub: str = "",
                knowable: float | None = None, why_not: str = "") -> Expectation:
        exp = Expectation(rule, self.spec.site, self.spec.cabinet, sub, incident.kind,
                          self.spec.kind, t, incident.end.timestamp(), knowable, why_not, incident.id)
        self.ledger.expectations.append(exp)
        return exp

    def _next_check(self, t: float, times: tuple[time, ...]) -> float | None:
        day = utc(t).astimezone(ZONE).date()
        for _ in range(30):
            if self.calendar.is_school_day(day):
                for at in sorted(times):
                    moment = local_ts(day, at)
                    if moment >= t:
                        return moment
            day += timedelta(days=1)
        return None

    # -- ground truth at a poll ------------------------------------------------------------------
    def _truth(self, t: float) -> None:
        site, cab, led = self.spec.site, self.spec.cabinet, self.ledger
        for i, slot in enumerate(self.slots):
            if slot.charging:
                if self.episode[i] is None and slot.ipad is not None:
                    self.episode[i] = (t, slot.ipad.soc)
            elif self.episode[i] is not None:
                self._end_episode(i, t)
        for slot, (ipad, exp) in self.broken.items():
            physics = self.slots[slot - 1]
            should = (physics.ipad is ipad and physics.mains_on
                      and (not ipad.holding or ipad.soc < physics.params.resume_below_soc))
            if should:
                led.open("broken_idle", site, cab, str(slot), t)
                if exp is not None and exp.knowable is None:
                    exp.knowable, exp.why_not = t, ""
            else:
                led.close("broken_idle", site, cab, str(slot), t)
        for slot, exp in self.overpower.items():
            if self.slots[slot - 1].draw_w() > self.thresholds.rating_w:
                led.open("overpower", site, cab, str(slot), t)
                if exp.knowable is None:
                    exp.knowable, exp.why_not = t, ""
            else:
                led.close("overpower", site, cab, str(slot), t)
        for slot, exp in list(self.forgotten.items()):
            if self.slots[slot - 1].ipad is not None:
                exp.end = t
                del self.forgotten[slot]
                led.close("not_returned", site, cab, str(slot), t)
        # A full iPad taken unseen is knowable at the first return check after the evidence
        # window has passed (the agent's verdict is "gone now", not "gone at an earlier check"):
        # _return_check decides.
        local = utc(t).astimezone(ZONE)
        if local.second == 0 and self.calendar.is_school_day(local.date()):
            if local.time() in self.return_checks:
                self._return_check(t)
            if local.time() == MORNING_CHECK:
                self._morning_check(t)

    def _return_check(self, t: float) -> None:
        site, cab = self.spec.site, self.spec.cabinet
        window = self.thresholds.evidence_window_s
        for i, slot in enumerate(self.slots):
            number = i + 1
            if slot.ipad is not None:
                continue
            exp = self.forgotten.get(number)
            if exp is None:
                exp = Expectation("ipad_not_returned", site, cab, str(number), "forgotten",
                                  self.spec.kind, t, t)
                self.forgotten[number] = exp
                self.ledger.expectations.append(exp)
                self.ledger.open("not_returned", site, cab, str(number), t)
            if exp.knowable is not None:
                continue
            taken, abrupt = self.take_abrupt.get(number, (t, False))
            if self.booted_at > taken:  # the agent restarted since: what it saw then is gone
                taken, abrupt = self.booted_at, False
            meter_dead = any(i in self.meter_slots.get(d, ()) for d in self.dead)
            if not self.has_meter:
                exp.why_not = "no slot meter"
            elif self.down:
                exp.why_not = "agent away at the check: its state is stale (cabinet_offline)"
            elif meter_dead:
                exp.why_not = "slot meter dead at the check (device_fault)"
            elif self.presence or abrupt or t - taken >= window:
                exp.knowable, exp.why_not = t, ""
            else:
                exp.why_not = "power-only: taken while silent (full), evidence window not passed"
                c = self.classifier
                if c is not None:
                    certainty = c.certainties()[i]
                    exp.listed |= (c.states()[i] is SlotState.CHARGED
                                   and certainty is Certainty.PROBABLE)
                    exp.unjudged |= certainty is Certainty.CANNOT_TELL

    def _morning_check(self, t: float) -> None:
        site, cab = self.spec.site, self.spec.cabinet
        for i, slot in enumerate(self.slots):
            episode = self.episode[i]
            if not slot.charging or episode is None or episode[1] >= REAL_CHARGE_BELOW or \
                    episode[0] > t or (slot.ipad is not None and slot.ipad.capacity_wh == 400.0):
                continue
            exp = Expectation("ipad_not_charged", site, cab, str(i + 1), "charging_at_check",
                              self.spec.kind, t, t + 3 * 3600)
            if self.has_meter:
                exp.knowable = t
            else:
                exp.why_not = "no slot meter"
            self.ledger.expectations.append(exp)
            self.ledger.open("not_charged", site, cab, str(i + 1), t)


