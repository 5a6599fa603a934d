"""Every rule as a timeline with a fake clock: when it goes pending, fires and resolves.

Times: T0 is Monday 2026-11-02 00:00 UTC = 01:00 in Europe/Berlin; H is one hour in seconds.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest

from cabinet_agent.common.protocol import Certainty, DeviceHealth, DoorState, MainsState, SlotState
from server.alerts.rules import RulesSettings
from server.org import Organisation
from tests.support.alert_timeline import T0, AlertTimeline

H = 3600.0
E, C, F, IDLE = SlotState.EMPTY, SlotState.CHARGING, SlotState.CHARGED, SlotState.PRESENT_IDLE

ORG = Organisation.model_validate({
    "district_team": "kreis-it",
    "teams": [{"id": "kreis-it", "name": "Schul-IT", "contacts": {"email": ["it@kreis.example"]}}],
    "municipalities": [{"id": "nk", "name": "Neunkirchen"}],
    "schools": [
        {"site": "gs-park", "name": "GS am Park", "municipality": "nk", "policy": "shared_pool",
         "hours": "07:30-16:00", "return_check": "16:30", "morning_check": "07:00",
         "contacts": {"email": ["sek@gs-park.example"]}},
        {"site": "igs", "name": "IGS", "municipality": "nk", "policy": "one_to_one"},
    ],
    "cabinets": [
        {"school": "gs-park", "id": "k1", "slots": {"1": "P-1", "2": "P-2", "3": "P-3"}},
        {"school": "gs-park", "id": "k2", "slot_rating_w": 50},
        {"school": "igs", "id": "k1", "slots": {"1": "I-1", "2": "I-2", "3": "I-3"}},
    ],
})


def _tl(start: datetime = T0, **kwargs: object) -> AlertTimeline:
    return AlertTimeline(org=ORG, start=start, step_s=kwargs.pop("step_s", 60.0),  # type: ignore[arg-type]
                         **kwargs)  # type: ignore[arg-type]


def _states(tl: AlertTimeline, name: str) -> list[str]:
    return [s.state.value for s in tl.statuses() if s.alert.name == name]


# --- iPad not returned -------------------------------------------------------------------------

def test_not_returned_fires_after_the_return_check_on_a_school_day() -> None:
    tl = _tl()
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry([F, F, F]))
    tl.at(8 * H, lambda: k1.telemetry([F, E, F]))  # 09:00 local: slot 2 taken to class
    tl.run(until=15.5 * H - 60)  # 16:29 local
    assert _states(tl, "ipad_not_returned") == []
    tl.run(until=15.5 * H + 240)  # 16:30 + 4 min: pending (grace 5 min)
    assert _states(tl, "ipad_not_returned") == ["pending"]
    tl.run(until=15.5 * H + 360)
    (status,) = tl.active("ipad_not_returned")
    assert status.state.value == "firing"
    assert dict(status.alert.labels) == {"alertname": "ipad_not_returned", "severity": "warning",
                                         "site": "gs-park", "cabinet": "k1", "slot": "2",
                                         "asset_tag": "P-2"}
    tl.at(20 * H, lambda: k1.telemetry([F, C, F])).run(until=20 * H + 60)  # back at 21:00
    assert _states(tl, "ipad_not_returned") == ["resolved"]


def test_a_slot_that_cannot_be_judged_or_may_be_emptied_is_no_alert() -> None:
    """A full iPad draws ~0 W: on a power-only cabinet a door opening makes its slot *charged,
    probable* (maybe taken out unseen) — no alert, however long; nor for a slot the agent cannot
    judge (idle since it started, or no reading)."""
    tl = _tl(group_wait_s=60)
    k1 = tl.cabinet(slots=3)
    U, P, CT = SlotState.UNKNOWN, Certainty.PROBABLE, Certainty.CANNOT_TELL
    tl.at(0, k1.online, lambda: k1.telemetry([F, F, F]))
    opened = T0 + timedelta(hours=7)
    tl.at(7 * H, lambda: k1.state([(F, Certainty.CERTAIN, None, None), (F, P, T0, opened),
                                   (U, CT, None, None)]))
    tl.run(until=2 * 24 * H)
    assert _states(tl, "ipad_not_returned") == [] and tl.sent == []


def test_no_sign_of_a_full_ipad_for_the_evidence_window_is_not_returned_at_the_next_check() -> None:
    """The agent's verdict (empty, probable) comes days after the door opened: the iPad is gone
    now, but may have left after the last check. It is missing at the first check after the
    verdict, and the alert says since when there is no sign of it."""
    tl = _tl(group_wait_s=60)
    k1 = tl.cabinet(slots=3)
    P = Certainty.PROBABLE
    # Monday 08:00 local the door opened; its last pulse was at 06:00
    opened, drew = T0 + timedelta(hours=7), T0 + timedelta(hours=5)
    tl.at(0, k1.online, lambda: k1.telemetry([F, F, F]))
    tl.at(7 * H, lambda: k1.state([(F, Certainty.CERTAIN, drew, None), (F, P, drew, opened),
                                   (F, Certainty.CERTAIN, drew, None)]))
    tl.at(2 * 24 * H, lambda: k1.state([(F, Certainty.CERTAIN, drew, None), (E, P, drew, opened),
                                        (F, Certainty.CERTAIN, drew, None)]))  # Wednesday 01:00
    tl.run(until=2 * 24 * H + 15.5 * H - 60)  # Wednesday 16:29 local: the check is still to come
    assert _states(tl, "ipad_not_returned") == []
    tl.run(until=2 * 24 * H + 15.5 * H + 400)  # 16:30 and the grace period
    (status,) = tl.active("ipad_not_returned")
    assert status.state.value == "firing"
    assert (status.alert.labels["slot"], status.alert.annotations["reason"]) == ("2", "no_sign")
    assert status.alert.annotations["unseen_since"] == opened.isoformat()
    (sent,) = tl.sent
    assert sent.receiver == "school:gs-park"
    assert "keine Spur von iPad P-2" in sent.notification.body


def test_not_returned_goes_to_the_school_not_the_team() -> None:
    tl = _tl(group_wait_s=60)
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry([F, F, F])).at(8 * H, lambda: k1.telemetry([F, E, F]))
    tl.run(until=16 * H)
    (sent,) = tl.sent
    assert sent.receiver == "school:gs-park" and sent.firing == ["ipad_not_returned"]
    assert "Fach 2: iPad P-2 nicht zurückgegeben" in sent.notification.body


def test_an_ipad_taken_after_the_check_is_not_missing_yet() -> None:
    tl = _tl()
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry([F, F, F]))
    tl.at(17 * H, lambda: k1.telemetry([E, F, F]))  # 18:00 local, after the check
    tl.run(until=23 * H)
    assert _states(tl, "ipad_not_returned") == []


def test_not_returned_ignores_untagged_slots() -> None:
    tl = _tl()
    untagged = tl.cabinet(cabinet="k2", slots=2)  # no asset tags configured or in the birth
    tl.at(0, untagged.online, lambda: untagged.telemetry([E, E]))
    tl.run(until=20 * H)
    assert _states(tl, "ipad_not_returned") == []


def test_one_to_one_schools_expect_the_ipads_back_in_the_morning() -> None:
    """Out at night is normal for take-home iPads; missing after the morning check is not."""
    tl = _tl()
    igs = tl.cabinet(site="igs", slots=3)
    tl.at(0, igs.online, lambda: igs.telemetry([F, F, F]))
    tl.at(14 * H, lambda: igs.telemetry([E, E, E]))  # 15:00 local: all go home
    tl.at(24 * H + 6.5 * H, lambda: igs.telemetry([C, C, E]))  # Tuesday 07:30: two are back
    tl.run(until=24 * H + 7.5 * H - 60)  # 08:29 local: before the check
    assert _states(tl, "ipad_not_returned") == []
    tl.run(until=24 * H + 7.5 * H + 360)  # 08:36: the check and its grace have passed
    (status,) = tl.active("ipad_not_returned")
    assert (status.alert.labels["site"], status.alert.labels["slot"]) == ("igs", "3")


def test_no_check_on_a_public_holiday_or_in_the_school_holidays() -> None:
    # Thursday 2026-06-04 is Fronleichnam (public holiday in Saarland): no check that day;
    # Friday is a school day again, and the iPad still missing then is reported.
    thursday = datetime(2026, 6, 4, 0, 0, tzinfo=T0.tzinfo)  # 02:00 local (summer time)
    tl = _tl(start=thursday)
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry([F, F, F])).at(7 * H, lambda: k1.telemetry([E, F, F]))
    tl.run(until=23 * H)
    assert _states(tl, "ipad_not_returned") == []
    tl.run(until=24 * H + 14.5 * H + 600)  # Friday 16:40 local
    assert _states(tl, "ipad_not_returned") == ["firing"]

    herbstferien = datetime(2026, 10, 5, 0, 0, tzinfo=T0.tzinfo)  # Monday, first day off
    tl = _tl(start=herbstferien)
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry([F, F, F])).at(7 * H, lambda: k1.telemetry([E, F, F]))
    tl.run(until=2 * 24 * H)
    assert _states(tl, "ipad_not_returned") == []
    calendar = tl.calendars.for_site("gs-park")
    assert calendar.no_school_reason(date(2026, 10, 5)) == "Herbstferien 2026"
    assert calendar.no_school_reason(date(2026, 6, 4)) == "Corpus Christi"
    assert calendar.no_school_reason(date(2026, 11, 7)) == "weekend"
    assert calendar.is_school_day(date(2026, 11, 2))


# --- charging ----------------------------------------------------------------------------------

def test_present_but_not_charging_after_its_pending_period() -> None:
    tl = _tl(step_s=10)
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry([F, IDLE, SlotState.FAULT]))
    tl.run(until=890)
    assert _states(tl, "ipad_not_charging") == ["pending", "pending"]
    tl.run(until=910)
    alerts = {s.alert.labels["slot"]: s.alert for s in tl.active("ipad_not_charging")}
    assert {k: a.annotations["state"] for k, a in alerts.items()} == {"2": "present_idle",
                                                                    "3": "fault"}
    tl.at(1000, lambda: k1.telemetry([F, C, C])).run(until=1010)
    assert _states(tl, "ipad_not_charging") == ["resolved", "resolved"]


def test_not_charged_by_the_morning_check() -> None:
    tl = _tl()
    k1 = tl.cabinet(slots=3)
    # Slot 1 charges all night; slot 2 is put in at 07:30, after the check.
    tl.at(0, k1.online, lambda: k1.telemetry([C, F, F]))
    tl.at(6.5 * H, lambda: k1.telemetry([C, C, F]))
    tl.run(until=6 * H - 60)  # 06:59 local
    assert _states(tl, "ipad_not_charged") == []
    tl.run(until=7 * H)
    (status,) = tl.active("ipad_not_charged")
    assert status.state.value == "firing" and status.alert.labels["slot"] == "1"
    tl.at(7.5 * H, lambda: k1.telemetry([F, C, F])).run(until=8 * H)
    assert _states(tl, "ipad_not_charged") == ["resolved"]


def test_charging_too_long() -> None:
    tl = _tl(rules=RulesSettings.model_validate({"charging_too_long": {"max_hours": 2}}))
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry([C, F, F]))
    tl.run(until=2 * H)
    assert _states(tl, "charging_too_long") == []
    tl.run(until=2 * H + 60)
    assert _states(tl, "charging_too_long") == ["firing"]


def test_slot_overpower_against_the_default_and_the_cabinet_rating() -> None:
    tl = _tl(step_s=10)
    k1 = tl.cabinet(slots=2)
    k2 = tl.cabinet(cabinet="k2", slots=2)  # rated 50 W per slot
    tl.at(0, k1.online, k2.online, lambda: k1.telemetry([C, C], [45.0, 20.0]),
          lambda: k2.telemetry([C, C], [45.0, 20.0]))
    tl.run(until=50)
    assert _states(tl, "slot_overpower") == ["pending"]
    tl.run(until=70)
    (status,) = tl.active("slot_overpower")
    assert (status.alert.labels["cabinet"], status.alert.labels["slot"]) == ("k1", "1")
    assert status.alert.severity == "critical"
    assert dict(status.alert.annotations) == {"power_w": "45.0", "rating_w": "30.0"}


def test_battery_worn_from_charge_sessions() -> None:
    @dataclass(frozen=True)
    class Verdict:
        asset_tag: str
        remaining: float
        full_charges: int

    class SessionSource:
        """Energy per full charge (Wh) per asset tag; the median of the last five against the
        median of the first five, as server.battery does with the sessions' taper energy."""

        def __init__(self, sessions: dict[str, list[float]]) -> None:
            self.sessions = sessions

        def worn(self) -> list[Verdict]:
            result = []
            for tag, energies in self.sessions.items():
                if len(energies) < 10:
                    continue
                ratio = statistics.median(energies[-5:]) / statistics.median(energies[:5])
                if ratio < 0.8:
                    result.append(Verdict(tag, ratio, len(energies)))
            return result

    healthy = [11.9, 12.1, 12.0, 11.8, 12.2] * 4
    worn = [12.0, 12.1, 11.9, 12.0, 12.2] * 2 + [9.1, 8.9, 9.0, 9.2, 8.8]
    source = SessionSource({"P-1": healthy, "P-2": worn, "P-3": worn[:8]})
    tl = _tl(battery=source)
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry([F, F, F])).run(until=120)
    (status,) = tl.active("battery_worn")
    assert (status.alert.labels["slot"], status.alert.labels["asset_tag"]) == ("2", "P-2")
    assert dict(status.alert.annotations) == {"ratio_pct": "75", "full_charges": "15"}
    assert status.alert.severity == "info"
    assert _tl().run(until=120).active("battery_worn") == []  # no source wired: nothing


# --- door, temperature, mains, devices ---------------------------------------------------------

def test_door_open_longer_than_its_limit_in_school_hours() -> None:
    tl = _tl(start=T0 + timedelta(hours=8), step_s=10)  # 09:00 local
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, k1.telemetry).at(60, lambda: k1.telemetry(door=DoorState.OPEN))
    tl.run(until=60 + 890)
    assert _states(tl, "door_open") == ["pending"]
    assert _states(tl, "door_open_after_hours") == []
    tl.run(until=60 + 910)
    assert _states(tl, "door_open") == ["firing"]


def test_door_open_after_hours_fires_sooner() -> None:
    tl = _tl(start=T0 + timedelta(hours=16), step_s=10)  # 17:00 local
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry(door=DoorState.OPEN)).run(until=130)
    assert _states(tl, "door_open_after_hours") == ["firing"]
    assert _states(tl, "door_open") == ["pending"]
    tl.at(200, k1.telemetry).run(until=210)
    assert _states(tl, "door_open_after_hours") == ["resolved"]
    assert _states(tl, "door_open") == []  # never fired: forgotten


@pytest.mark.parametrize(("celsius", "severities"), [
    (39.9, []), (40.0, ["warning"]), (49.9, ["warning"]), (50.0, ["critical", "warning"])])
def test_over_temperature_thresholds(celsius: float, severities: list[str]) -> None:
    tl = _tl(step_s=10)
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry(temperature=celsius)).run(until=110)
    assert all(s.state.value == "pending" for s in tl.active("over_temperature"))
    tl.run(until=130)
    assert sorted(s.alert.severity for s in tl.active("over_temperature")) == severities


def test_fast_temperature_rise_but_not_a_slow_one() -> None:
    tl = _tl(step_s=60)
    fast, slow = tl.cabinet(cabinet="k1", slots=3), tl.cabinet(cabinet="k2", slots=3)
    tl.at(0, fast.online, slow.online)
    for minute in range(0, 31):
        tl.at(minute * 60, lambda m=minute: fast.telemetry(temperature=22.0 + (m // 5) * 3.0),
              lambda m=minute: slow.telemetry(temperature=22.0 + m * 0.2))
    tl.run(until=9 * 60)
    assert tl.active("temperature_rise") == []  # +3 °C so far
    tl.run(until=11 * 60)
    (status,) = tl.active("temperature_rise")
    assert status.alert.labels["cabinet"] == "k1"
    assert status.alert.annotations["from_c"] == "22.0"
    tl.run(until=30 * 60)
    assert [s.alert.labels["cabinet"] for s in tl.active("temperature_rise")] == ["k1"]


def test_mains_lost_only_in_the_charging_window() -> None:
    tl = _tl(start=T0 + timedelta(hours=9), step_s=30)  # 10:00 local: not a charging time
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry(mains=MainsState.OFF)).run(until=4 * H)
    assert _states(tl, "mains_lost") == []
    tl.run(until=5 * H + 290)  # the window opens at 15:00 local (t = 5 h)
    assert _states(tl, "mains_lost") == ["pending"]
    tl.run(until=5 * H + 330)
    (status,) = tl.active("mains_lost")
    assert status.state.value == "firing" and status.alert.severity == "critical"


def test_device_fault_after_its_pending_period() -> None:
    tl = _tl(step_s=10)
    k1 = tl.cabinet(slots=3)
    faulty = [DeviceHealth(name="meter-1", ok=False, error="no answer"),
              DeviceHealth(name="io-1", ok=True)]
    tl.at(0, k1.online, lambda: k1.telemetry(devices=faulty)).run(until=50)
    assert _states(tl, "device_fault") == ["pending"]
    tl.run(until=70)
    (status,) = tl.active("device_fault")
    assert status.alert.labels["device"] == "meter-1"
    assert status.alert.annotations["error"] == "no answer"


def test_a_disabled_rule_finds_nothing() -> None:
    tl = _tl(rules=RulesSettings.model_validate({"door_open": {"enabled": False}}), step_s=60)
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry(door=DoorState.OPEN)).run(until=2 * H)
    assert _states(tl, "door_open") == []
    assert "door_open" not in [r.name for r in tl.engine.rules]


def test_a_charge_the_agent_calls_too_long_is_charging_too_long_not_not_charging() -> None:
    tl = _tl()
    k1 = tl.cabinet(slots=3)
    X, CE = SlotState.FAULT, Certainty.CERTAIN
    tl.at(0, k1.online, lambda: k1.telemetry([F, F, F]))
    tl.at(H, lambda: k1.state([(F, CE, None, None), (X, CE, None, None), (X, CE, None, None)],
                              faults={2: "too_long", 3: "no_topup"}))
    tl.at(H + 60, lambda: k1.telemetry([F, X, X]))  # telemetry keeps the reasons
    tl.run(until=2 * H)
    assert {(s.alert.name, s.alert.labels["slot"]) for s in tl.statuses()} == {
        ("charging_too_long", "2"), ("ipad_not_charging", "3")}


def test_nothing_new_about_slots_from_the_stale_state_of_an_agent_that_is_away() -> None:
    """The agent went away before the check: its last state says nothing about the check, so no
    'not returned' from it (cabinet_offline tells the technician). Back and still empty: it is."""
    tl = _tl()
    k1 = tl.cabinet(slots=3)
    tl.at(0, k1.online, lambda: k1.telemetry([F, F, F]))
    tl.at(8 * H, lambda: k1.telemetry([F, E, F]))  # 09:00 local: slot 2 taken to class
    tl.at(14 * H, k1.offline)  # 15:00 local: Last Will
    tl.run(until=16 * H)  # 17:00 local, the 16:30 check has passed
    assert _states(tl, "ipad_not_returned") == []
    assert _states(tl, "cabinet_offline") == ["firing"]
    tl.at(16 * H + 60, k1.online, lambda: k1.telemetry([F, E, F]))  # back, slot 2 still empty
    tl.run(until=16 * H + 600)
    assert _states(tl, "ipad_not_returned") == ["firing"]


def test_an_ipad_present_and_silent_since_the_agent_started_is_no_not_charging() -> None:
    """After an agent (or collector) restart the retained state says present_idle for a full iPad
    that has not drawn since: the agent cannot tell, so no alert — unlike an iPad put in and silent,
    or one whose charge stopped abruptly (certain), which must draw and does not."""
    tl = _tl()
    k1 = tl.cabinet(slots=3)
    CT, CE = Certainty.CANNOT_TELL, Certainty.CERTAIN
    tl.at(0, k1.online, lambda: k1.state([(IDLE, CT, None, None), (IDLE, CT, None, None),
                                          (IDLE, CE, None, None)]))
    tl.run(until=2 * H)
    assert {(s.alert.name, s.alert.labels["slot"]) for s in tl.statuses()} == {
        ("ipad_not_charging", "3")}
