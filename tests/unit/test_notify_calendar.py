"""Notifications that follow the calendar: school-day alerts wait for the next school day, safety
alerts go out at once, and a restart sends nothing twice.

The dispatcher runs on a fake clock in one-minute steps over hand-made alerts (their state follows
from their times), against the real school calendar (shipped Saarland holidays, public holidays of
"SL", a school's own ICS file). Times are local (Europe/Berlin); nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.alerts.cadence import CADENCES, Cadence, cadence_of, school_day_window
from server.alerts.model import Alert
from server.alerts.routing import Receiver, Router
from server.alerts.state import StoredState
from server.alerts.status import alert_statuses
from server.alerts.store import Ack, NotificationLog
from server.notify import Notification, Notifier, NotifyError
from server.notify.dispatch import Dispatcher, GroupTiming
from server.org import Organisation
from server.presence import UnconfirmedSlot
from server.schoolcal import Calendars
from tests.support.store import store_at

BERLIN = ZoneInfo("Europe/Berlin")
SHIPPED = Path(__file__).parents[2] / "deploy" / "calendars" / "saarland-schulferien-2025-2027.ics"

ORG = Organisation.model_validate({
    "district": "Landkreis Test",
    "district_team": "kreis-it",
    "teams": [{"id": "kreis-it", "name": "Schul-IT Kreis",
               "contacts": {"email": ["it@kreis.example"]}}],
    "municipalities": [{"id": "nk", "name": "Neunkirchen"}],
    "schools": [{"site": "gs-park", "name": "GS am Park", "municipality": "nk",
                 "hours": "07:30-16:00", "return_check": "16:30",
                 "contacts": {"email": ["sek@gs-park.example"]}}],
    "cabinets": [{"school": "gs-park", "id": "k1", "name": "Raum 12"}],
})

# Its own calendar: Monday 16 and Tuesday 17 November 2026 are movable days off.
OWN_ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:bewegliche@test
DTSTAMP:20261101T000000Z
DTSTART;VALUE=DATE:20261116
DTEND;VALUE=DATE:20261118
SUMMARY:Beweglicher Ferientag
END:VEVENT
END:VCALENDAR
"""


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A local time on that day, in UTC as the collector's clock gives it."""
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN).astimezone(UTC)


def alert(name: str, start: datetime, end: datetime | None = None, *, slot: int | None = None,
          site: str = "gs-park", cabinet: str = "k1", severity: str = "warning") -> Alert:
    labels = {"alertname": name, "severity": severity, "site": site, "cabinet": cabinet}
    if slot is not None:
        labels |= {"slot": str(slot), "asset_tag": f"P-{slot}"}
    return Alert(labels, {}, start, start, end)


@dataclass(frozen=True)
class Sent:
    at: datetime  # UTC
    receiver: str
    notification: Notification

    @property
    def local(self) -> datetime:
        return self.at.astimezone(BERLIN)

    @property
    def changes(self) -> dict[str, str]:
        """alertname -> change ("new", "still_open", "resolved") in the webhook document."""
        return {a["labels"]["alertname"]: a["change"] for a in self.notification.payload["alerts"]}


@dataclass
class _Recorder:
    bench: Bench
    receiver: str
    name: str = "rec"

    def send(self, notification: Notification) -> None:
        self.bench.attempts.append(self.bench.now)
        if self.bench.receiver_down:
            raise NotifyError("receiver down")
        self.bench.sent.append(Sent(self.bench.now, self.receiver, notification))


@dataclass
class Bench:
    """A dispatcher over a log store, fed with ``alerts`` at every step of a fake clock."""

    state: NotificationLog = field(default_factory=StoredState.in_memory)
    org: Organisation = ORG
    calendars: Calendars = field(default_factory=lambda: Calendars(BERLIN, "SL", [SHIPPED]))
    school_alerts: Sequence[str] = ()  # by default the team gets everything: one group
    digest_time: time | None = None
    unconfirmed: Callable[[str], Sequence[UnconfirmedSlot]] | None = None
    repeat: timedelta = timedelta(hours=4)
    alerts: list[Alert] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    attempts: list[datetime] = field(default_factory=list)
    receiver_down: bool = False
    now: datetime = datetime(2000, 1, 1, tzinfo=UTC)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(
            org=self.org, router=Router(self.org, self.school_alerts),
            timing=GroupTiming(timedelta(seconds=30), timedelta(minutes=5), self.repeat),
            notifiers=self._notifiers, log_store=self.state, calendars=self.calendars,
            digest_time=self.digest_time, unconfirmed=self.unconfirmed)

    def _notifiers(self, receiver: Receiver) -> list[Notifier]:
        return [_Recorder(self, receiver.id)]

    def tick(self, now: datetime) -> list[Sent]:
        """One ``due()`` at ``now``; what it sent."""
        self.now = now
        before = len(self.sent)
        statuses = alert_statuses(self.alerts, [], self.acks, now)
        for delivery in self.dispatcher.due(statuses, now):
            try:
                delivery.notifier.send(delivery.notification)
            except NotifyError:
                continue
            self.dispatcher.sent(delivery)
        return self.sent[before:]

    def run(self, start: datetime, end: datetime, step: timedelta = timedelta(minutes=1)
            ) -> list[Sent]:
        """Every step from ``start`` up to and including ``end``; what was sent meanwhile."""
        before = len(self.sent)
        now = start
        while now <= end:
            self.tick(now)
            now += step
        return self.sent[before:]


FRIDAY = date(2026, 11, 13)
MONDAY = date(2026, 11, 16)


# --- the table ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "cadence"), [
    ("ipad_not_returned", Cadence.SCHOOL_DAY),
    ("ipad_not_charged", Cadence.SCHOOL_DAY),
    ("ipad_not_charging", Cadence.SCHOOL_DAY),
    ("door_open_after_hours", Cadence.SAFETY),
    ("over_temperature", Cadence.SAFETY),
    ("temperature_rise", Cadence.SAFETY),
    ("mains_lost", Cadence.SAFETY),
    ("cabinet_offline", Cadence.SAFETY),
    ("door_open", Cadence.NORMAL),
    ("device_fault", Cadence.NORMAL),
    ("charging_too_long", Cadence.NORMAL),
    ("slot_overpower", Cadence.NORMAL),
    ("battery_worn", Cadence.NORMAL),
    ("slot_unjudgeable", Cadence.NORMAL),
    ("a_rule_written_tomorrow", Cadence.NORMAL),
])
def test_every_rule_has_its_cadence(name: str, cadence: Cadence) -> None:
    assert cadence_of(name) is cadence


def test_the_table_names_only_rules_that_exist() -> None:
    from server.alerts.rules import RulesSettings

    assert set(CADENCES) <= {*RulesSettings.model_fields, "cabinet_offline"}


def test_the_school_day_window_runs_from_lessons_into_the_evening() -> None:
    park = ORG.school("gs-park")
    assert school_day_window(park) == (time(7, 30), time(18, 30))  # last check 16:30 + 2 h
    assert school_day_window(None) == (time(7, 0), time(18, 0))
    late = Organisation.model_validate({
        "district_team": "t", "teams": [{"id": "t", "name": "T"}],
        "municipalities": [{"id": "m", "name": "M"}],
        "schools": [{"site": "s", "name": "S", "municipality": "m", "return_check": "22:30"}],
    }).school("s")
    assert school_day_window(late) == (time(7, 30), time.max)  # never past midnight


# --- school-day alerts wait for a school day ----------------------------------------------------

@pytest.mark.parametrize(("fires", "told_on", "own_days_off"), [
    (at(FRIDAY, 19), MONDAY, False),  # the weekend
    (at(date(2026, 6, 3), 19), date(2026, 6, 5), False),  # Thursday 4 June: Fronleichnam (SL)
    (at(date(2026, 11, 14), 9), MONDAY, False),  # fires on a Saturday
    (at(FRIDAY, 19), date(2026, 11, 18), True),  # the school's own days off (ICS), Mon + Tue
    (at(MONDAY, 6, 50), MONDAY, False),  # a school day, but before lessons begin
], ids=["weekend", "public-holiday", "saturday", "own-ics", "before-lessons"])
def test_a_school_day_alert_is_told_at_the_start_of_the_next_school_day(
        tmp_path: Path, fires: datetime, told_on: date, own_days_off: bool) -> None:
    own = tmp_path / "gs-park.ics"
    own.write_text(OWN_ICS, encoding="utf-8")
    calendars = Calendars(BERLIN, "SL", [SHIPPED], {"gs-park": [own]} if own_days_off else None)
    bench = Bench(calendars=calendars)
    bench.alerts = [alert("ipad_not_charging", fires, slot=2)]
    sent = bench.run(fires - timedelta(hours=1), at(told_on, 11))
    assert [s.local.date() for s in sent] == [told_on]  # once: the reminder would be at 11:30
    assert time(7, 30) <= sent[0].local.time() < time(7, 35)  # the first flush from 07:30
    assert sent[0].changes == {"ipad_not_charging": "new"}
    assert "iPad P-2 lädt nicht" in sent[0].notification.body


def test_a_school_day_alert_resolved_before_the_school_day_is_never_told() -> None:
    bench = Bench()
    bench.alerts = [alert("ipad_not_charging", at(FRIDAY, 19), at(date(2026, 11, 15), 10),
                          slot=2)]
    assert bench.run(at(FRIDAY, 18), at(MONDAY, 12)) == []


def test_no_reminder_of_a_school_day_alert_on_days_off() -> None:
    bench = Bench(school_alerts=("ipad_not_returned",))
    bench.alerts = [alert("ipad_not_returned", at(FRIDAY, 16, 35), slot=3)]
    sent = bench.run(at(FRIDAY, 16), at(MONDAY, 12))
    assert [s.receiver for s in sent] == ["school:gs-park"] * 3
    friday, monday, later = (s.local for s in sent)
    assert (friday.date(), friday.time()) == (FRIDAY, time(16, 36))  # told at once, same day
    assert monday.date() == MONDAY and time(7, 30) <= monday.time() < time(7, 35)
    assert later - monday >= timedelta(hours=4)  # the repeat interval, counted on school time
    assert [s.notification.payload["message"] for s in sent] == ["update", "reminder", "reminder"]
    assert sent[1].notification.subject == ("[Ladewache] Erinnerung: 1 offene(r) Alarm(e): "
                                            "Raum 12, GS am Park")


def test_a_message_on_a_day_off_carries_only_the_other_alerts() -> None:
    saturday = date(2026, 11, 14)
    bench = Bench(repeat=timedelta(days=7))  # door_open (normal) would be repeated 24/7
    bench.alerts = [alert("ipad_not_charging", at(saturday, 9), slot=2),
                    alert("door_open", at(saturday, 10))]
    (weekend,) = bench.run(at(saturday, 8), at(date(2026, 11, 15), 23))
    assert weekend.changes == {"door_open": "new"}
    assert "lädt nicht" not in weekend.notification.body
    assert "weitere" not in weekend.notification.body.lower()  # the waiting one is not counted
    (monday,) = bench.run(at(MONDAY, 0), at(MONDAY, 9))
    assert monday.changes == {"ipad_not_charging": "new", "door_open": "still_open"}
    assert "iPad P-2 lädt nicht" in monday.notification.body
    assert "Tür steht zu lange offen" not in monday.notification.body  # told on Saturday ...
    assert "Eine weitere Meldung besteht weiter." in monday.notification.body  # ... counted


def test_a_told_school_day_alert_is_not_news_again_after_a_day_off_message() -> None:
    saturday = date(2026, 11, 14)
    bench = Bench()
    bench.alerts = [alert("ipad_not_charging", at(FRIDAY, 9), slot=2),
                    alert("mains_lost", at(saturday, 3), at(saturday, 5), severity="critical")]
    sent = bench.run(at(FRIDAY, 8), at(MONDAY, 9))
    assert [(s.local.strftime("%a %H:%M"), s.changes) for s in sent] == [
        ("Fri 09:01", {"ipad_not_charging": "new"}),
        ("Fri 13:01", {"ipad_not_charging": "still_open"}),  # reminder, inside the window
        ("Fri 17:01", {"ipad_not_charging": "still_open"}),
        ("Sat 03:00", {"mains_lost": "new"}),  # the school-day alert waits, but stays told
        ("Sat 05:00", {"mains_lost": "resolved"}),  # a group flush falls on it
        ("Mon 07:30", {"ipad_not_charging": "still_open"}),  # a reminder, not a re-send
    ]
    assert sent[-1].notification.payload["message"] == "reminder"


def test_a_school_day_alert_that_resolved_and_came_back_over_the_weekend_is_news() -> None:
    bench = Bench()
    bench.alerts = [alert("ipad_not_charging", at(FRIDAY, 9), at(date(2026, 11, 14), 10), slot=2),
                    alert("ipad_not_charging", at(date(2026, 11, 15), 10), slot=2)]
    sent = bench.run(at(FRIDAY, 8), at(MONDAY, 9))
    assert [(s.local.strftime("%a"), s.notification.payload["message"], s.changes)
            for s in sent] == [
        ("Fri", "update", {"ipad_not_charging": "new"}),
        ("Fri", "reminder", {"ipad_not_charging": "still_open"}),
        ("Fri", "reminder", {"ipad_not_charging": "still_open"}),
        ("Mon", "update", {"ipad_not_charging": "new"}),  # Sunday's, not Friday's
    ]


# --- safety alerts do not wait ------------------------------------------------------------------

def test_a_safety_alert_goes_out_at_the_next_due_although_its_group_just_flushed() -> None:
    night = at(date(2026, 11, 17), 22)
    bench = Bench()
    bench.alerts = [alert("door_open", night)]
    assert bench.tick(night) == []  # a new group waits group_wait ...
    (first,) = bench.tick(night + timedelta(seconds=30))
    assert first.changes == {"door_open": "new"}
    bench.alerts.append(alert("door_open_after_hours", night + timedelta(seconds=90)))
    (urgent,) = bench.tick(night + timedelta(seconds=90))  # a minute after the flush
    assert urgent.changes == {"door_open_after_hours": "new", "door_open": "still_open"}
    bench.alerts.append(alert("slot_overpower", night + timedelta(seconds=150), slot=1))
    assert bench.run(night + timedelta(seconds=150), night + timedelta(seconds=389)) == []
    (normal,) = bench.tick(night + timedelta(seconds=390))  # waits for the group interval
    assert normal.changes["slot_overpower"] == "new"


def test_a_failed_safety_send_is_retried_at_the_next_flush_not_at_every_tick() -> None:
    night = at(date(2026, 11, 17), 22)
    bench = Bench(receiver_down=True)
    bench.alerts = [alert("cabinet_offline", night, severity="critical")]
    bench.run(night, night + timedelta(minutes=4), step=timedelta(seconds=10))
    assert bench.attempts == [night]  # at once, failed, then quiet until the group interval
    bench.receiver_down = False
    (sent,) = bench.run(night + timedelta(minutes=4, seconds=10), night + timedelta(minutes=10),
                        step=timedelta(seconds=10))
    assert sent.at == night + timedelta(minutes=5)


def test_safety_alerts_are_told_and_repeated_on_days_off() -> None:
    saturday = date(2026, 11, 14)
    bench = Bench()
    bench.alerts = [alert("over_temperature", at(saturday, 2), severity="critical")]
    sent = bench.run(at(saturday, 1), at(saturday, 12))
    assert [s.local.strftime("%H:%M") for s in sent] == ["02:00", "06:00", "10:00"]


# --- a restart sends nothing twice ----------------------------------------------------------------

@pytest.mark.store
def test_a_restart_sends_nothing_twice(tmp_path: Path) -> None:
    saturday = date(2026, 11, 14)
    alerts = [alert("ipad_not_charging", at(FRIDAY, 19), slot=2),
              alert("over_temperature", at(saturday, 3), severity="critical")]
    first = Bench(state=StoredState(store_at(tmp_path)), alerts=alerts, repeat=timedelta(days=7))
    sent = first.run(at(FRIDAY, 18), at(saturday, 12))
    assert [s.changes for s in sent] == [{"over_temperature": "new"}]

    # A new process over the same store, on Sunday: nothing again, the school-day alert still waits.
    second = Bench(state=StoredState(store_at(tmp_path)), alerts=alerts, repeat=timedelta(days=7))
    assert second.run(at(date(2026, 11, 15), 9), at(MONDAY, 7, 20)) == []
    (monday,) = second.run(at(MONDAY, 7, 21), at(MONDAY, 8))
    assert monday.changes == {"ipad_not_charging": "new", "over_temperature": "still_open"}

    third = Bench(state=StoredState(store_at(tmp_path)), alerts=alerts, repeat=timedelta(days=7))
    assert third.run(at(MONDAY, 8, 1), at(MONDAY, 16)) == []
