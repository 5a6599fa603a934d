"""Injected incidents of the alert-quality benchmark: what each does to the cabinet's physics and
agent, and which rules it must raise (``Incidents``, a part of ``CabinetRun``)."""

from __future__ import annotations

import bisect

from alert_quality_plan import Incident
from alert_quality_truth import REAL_CHARGE_BELOW

from cabinet_agent.common.protocol import StatusMessage
from simulators.physics import IPAD_9TH_GEN_WH, ChargerParams

__all__ = ["BROKEN_ERROR", "HOT_OFFSET_C", "Incidents"]

HOT_OFFSET_C = 21.0
BROKEN_ERROR = "no response (timeout)"


class Incidents:
    """Starting and ending injected incidents. A part of ``CabinetRun``."""

    def _charging_slot(self, below: float, planned: int | None) -> int | None:
        for i, slot in enumerate(self.slots):
            if slot.charging and slot.ipad is not None and slot.ipad.soc < below:
                return i + 1
        if planned is not None and self.slots[planned - 1].ipad is not None:
            return planned
        return None

    def _start(self, t: float, inc: Incident) -> list[StatusMessage]:
        site, cab, kind = self.spec.site, self.spec.cabinet, inc.kind
        led = self.ledger
        if kind in ("door_left_open", "door_after_hours"):
            self.forced_door += 1
            self._set_door(t)
            self._expect("door_open", inc, t, knowable=t)
            if kind == "door_after_hours":
                self._expect("door_open_after_hours", inc, t, knowable=t)
        elif kind == "agent_offline":
            led.span("offline", site, cab, "", t, inc.end.timestamp())
            self._expect("cabinet_offline", inc, t, knowable=t)
            self.down_until = max(self.down_until, inc.end.timestamp())
            if not self.down and self.will is not None:
                self.down = True
                return [self.will]
        elif kind == "device_dead":
            assert inc.device is not None
            self._advance_all(t)
            self.dead.add(inc.device)
            led.span("device", site, cab, inc.device, t, inc.end.timestamp())
            self._expect("device_fault", inc, t, inc.device, knowable=t)
        elif kind == "mains_off":
            self._advance_all(t)
            self.mains_on = False
            for slot in self.slots:
                slot.set_mains(False)
            led.span("mains", site, cab, "", t, inc.end.timestamp())
            self._expect("mains_lost", inc, t, knowable=t)
        elif kind == "over_temperature":
            self.hot = True
            led.span("hot", site, cab, "", t, inc.end.timestamp())
            self._expect("over_temperature", inc, t, knowable=t)
            self._expect("temperature_rise", inc, t, knowable=t)
        elif kind in ("charger_dies", "overpower", "battery_fault"):
            self._advance_all(t)
            below = 0.7 if kind == "overpower" else REAL_CHARGE_BELOW
            slot = self._charging_slot(below, inc.slot)
            self._slot_incident(t, inc, slot)
        elif kind == "late_return":
            self._late_return(t, inc)
        elif kind == "battery_wear":
            slot = inc.slot or 1
            physics = self.slots[slot - 1]
            ipad = physics.ipad or self.away.get(slot)
            exp = self._expect("battery_worn", inc, t, str(slot))
            if ipad is None or not self.has_meter:
                exp.why_not = "no slot meter" if not self.has_meter else "no iPad"
                return []
            self._advance_slot(slot - 1, t)
            ipad.health = 0.7
            led.span("worn", site, cab, str(slot), t, inc.end.timestamp())
            self.worn[id(ipad)] = (exp, self.full_charges.get(id(ipad), 0))
        return []

    def _slot_incident(self, t: float, inc: Incident, slot: int | None) -> None:
        site, cab, kind = self.spec.site, self.spec.cabinet, inc.kind
        rules = {"charger_dies": ("ipad_not_charging",), "overpower": ("slot_overpower",),
                 "battery_fault": ("charging_too_long",)}[kind]
        if slot is None:
            for rule in rules:
                self._expect(rule, inc, t, "", why_not="no iPad in the cabinet")
            return
        i = slot - 1
        physics = self.slots[i]
        ipad = physics.ipad
        assert ipad is not None
        sub = str(slot)
        if kind == "charger_dies":
            drawing = physics.charging and physics.draw_w() >= self.thresholds.removal_drop_w
            ipad.broken = True
            self._end_episode(i, t)
            self.ledger.span("broken", site, cab, sub, t, inc.end.timestamp())
            if self.presence:
                exp = self._expect("ipad_not_charging", inc, t, sub,
                                   why_not="repaired before the iPad needed to draw")
                self.broken[slot] = (ipad, exp)
            else:
                self.broken[slot] = (ipad, None)
                why = "no slot meter" if not self.has_meter else \
                    "power-only: a silent charger looks like a full iPad"
                if self.has_meter and drawing:
                    # The abrupt stop looks like a removal: the return check reports it.
                    exp = self._expect("ipad_not_returned", inc, t, sub)
                    check = self._next_check(t, self.return_checks)
                    if check is not None and check < inc.end.timestamp():
                        exp.knowable = check
                    else:
                        exp.why_not = "repaired before the next return check"
                else:
                    self._expect("ipad_not_charging", inc, t, sub, why_not=why)
        elif kind == "overpower":
            physics.params = ChargerParams(charge_power_w=36.0)  # a wrong, too strong charger
            physics.power_w = physics.draw_w()
            exp = self._expect("slot_overpower", inc, t, sub, why_not="never drew above the rating")
            if not self.has_meter:
                exp.why_not = "no slot meter"
            else:
                self.overpower[slot] = exp
        else:  # battery_fault: the battery never gets full
            episode = self.episode[i]
            ipad.capacity_wh = 400.0
            for rule in rules:
                exp = self._expect(rule, inc, t, sub)
                if not self.has_meter:
                    exp.why_not = "no slot meter"
                elif episode is None:
                    exp.why_not = "not charging"
                else:
                    exp.knowable = episode[0] + self.thresholds.max_charge_s
                    self.too_long.setdefault(slot, []).append(exp)
            if episode is not None and self.has_meter:
                self.ledger.open("too_long", site, cab, sub, episode[0] + self.thresholds.max_charge_s)

    def _late_return(self, t: float, inc: Incident) -> None:
        slot = inc.slot or 1
        i = slot - 1
        self._advance_slot(i, t)
        physics = self.slots[i]
        ipad = physics.ipad
        if ipad is not None:
            physics.remove()
            self._end_episode(i, t)
        else:
            ipad = self.away.pop(slot, None)
        if ipad is None:
            return
        self.forced_door += 1  # the caretaker opens the cabinet for two minutes
        self._set_door(t)
        self.events.insert(bisect.bisect(self.events, (t + 120, 9)), (t + 120, 9, "close", None))
        ipad.soc, ipad.holding = 0.10, False
        physics.insert(ipad)
        self.episode[i] = (t, ipad.soc)
        self.marks.append(t + 120)
        self.marks.sort()

    def _end(self, t: float, inc: Incident) -> None:
        site, cab, kind = self.spec.site, self.spec.cabinet, inc.kind
        if kind in ("door_left_open", "door_after_hours"):
            self.forced_door -= 1
            self._set_door(t)
        elif kind == "device_dead":
            self._advance_all(t)
            self.dead.discard(inc.device or "")
        elif kind == "mains_off":
            self._advance_all(t)
            self.mains_on = True
            for slot in self.slots:
                slot.set_mains(True)
        elif kind == "over_temperature":
            self.hot = False
        elif kind == "charger_dies":
            for slot, (ipad, _) in list(self.broken.items()):
                self._advance_all(t)
                ipad.broken = False
                del self.broken[slot]
                self.ledger.close("broken_idle", site, cab, str(slot), t)
        elif kind == "overpower":
            for slot in list(self.overpower):
                self._advance_slot(slot - 1, t)
                self.slots[slot - 1].params = ChargerParams()
                del self.overpower[slot]
                self.ledger.close("overpower", site, cab, str(slot), t)
        elif kind == "battery_fault":
            for slot in range(1, self.n + 1):
                ipad = self.slots[slot - 1].ipad or self.away.get(slot)
                if ipad is not None and ipad.capacity_wh == 400.0:
                    self._advance_slot(slot - 1, t)
                    ipad.capacity_wh = IPAD_9TH_GEN_WH

