"""The school calendar: weekends, public holidays (python-holidays) and ICS files."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from server.errors import ConfigError
from server.org import Organisation
from server.schoolcal import Calendars, load_ics_days

SHIPPED = Path(__file__).parents[2] / "deploy" / "calendars" / "saarland-schulferien-2025-2027.ics"
BERLIN = ZoneInfo("Europe/Berlin")

# A school's own file: two movable days off and a weekly "Studientag" on Wednesdays in January
# 2027 (a recurrence, expanded by recurring-ical-events), plus a timed event.
SCHOOL_ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:bewegliche-1@test
DTSTAMP:20261101T000000Z
DTSTART;VALUE=DATE:20261116
DTEND;VALUE=DATE:20261118
SUMMARY:Beweglicher Ferientag
END:VEVENT
BEGIN:VEVENT
UID:studientag@test
DTSTAMP:20261101T000000Z
DTSTART;VALUE=DATE:20270106
DTEND;VALUE=DATE:20270107
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:Studientag
END:VEVENT
BEGIN:VEVENT
UID:konferenz@test
DTSTAMP:20261101T000000Z
DTSTART:20261124T120000Z
DTEND:20261124T150000Z
SUMMARY:Gesamtkonferenz
END:VEVENT
END:VCALENDAR
"""


@pytest.mark.parametrize(("day", "reason"), [
    (date(2025, 10, 13), "Herbstferien 2025"),
    (date(2025, 10, 24), "Herbstferien 2025"),
    (date(2025, 12, 22), "Weihnachtsferien 2025/26"),
    (date(2026, 1, 2), "Weihnachtsferien 2025/26"),
    (date(2026, 2, 16), "Fastnachtsferien 2026"),
    (date(2026, 4, 7), "Osterferien 2026"),
    (date(2026, 8, 7), "Sommerferien 2026"),
    (date(2026, 10, 16), "Herbstferien 2026"),
    (date(2027, 3, 30), "Osterferien 2027"),
    (date(2027, 8, 6), "Sommerferien 2027"),
])
def test_the_shipped_saarland_holidays(day: date, reason: str) -> None:
    assert load_ics_days(SHIPPED)[day] == reason


def test_the_days_around_the_holidays_are_school_days() -> None:
    calendars = Calendars(BERLIN, "SL", [SHIPPED])
    calendar = calendars.for_site("any")
    for day in (date(2025, 10, 10), date(2025, 10, 27), date(2026, 8, 10), date(2027, 1, 4)):
        assert calendar.is_school_day(day), day
    assert calendar.no_school_reason(date(2026, 11, 1)) == "weekend"  # Sunday (and All Saints)
    assert calendar.no_school_reason(date(2027, 11, 1)) == "All Saints' Day"  # a Monday in SL
    assert calendar.no_school_reason(date(2026, 5, 1)) == "Labor Day"


def test_a_schools_own_ics_adds_days_with_recurrences(tmp_path: Path) -> None:
    own = tmp_path / "gs-park.ics"
    own.write_text(SCHOOL_ICS, encoding="utf-8")
    calendars = Calendars(BERLIN, "SL", [SHIPPED], {"gs-park": [own]})
    park, other = calendars.for_site("gs-park"), calendars.for_site("gs-other")
    assert park.no_school_reason(date(2026, 11, 16)) == "Beweglicher Ferientag"
    assert park.no_school_reason(date(2026, 11, 17)) == "Beweglicher Ferientag"
    assert park.is_school_day(date(2026, 11, 18))  # DTEND is exclusive
    assert [park.no_school_reason(date(2027, 1, d)) for d in (6, 13, 20, 27)] == ["Studientag"] * 4
    assert park.is_school_day(date(2027, 2, 3))  # COUNT=4
    assert park.no_school_reason(date(2026, 11, 24)) == "Gesamtkonferenz"
    assert other.is_school_day(date(2026, 11, 16))  # only that school
    assert other.no_school_reason(date(2026, 10, 5)) == "Herbstferien 2026"


def test_last_check_skips_weekends_and_holidays() -> None:
    calendar = Calendars(BERLIN, "SL", [SHIPPED]).for_site("x")
    saturday_noon = datetime(2026, 11, 7, 11, 0, tzinfo=UTC)
    check = calendar.last_check(saturday_noon, time(16, 30))
    assert check == datetime(2026, 11, 6, 16, 30, tzinfo=BERLIN)  # Friday
    monday_morning = datetime(2026, 11, 9, 6, 0, tzinfo=UTC)  # 07:00 local
    assert calendar.last_check(monday_morning, time(7, 0)) == datetime(2026, 11, 9, 7, 0,
                                                                       tzinfo=BERLIN)
    after_autumn_break = datetime(2026, 10, 19, 5, 0, tzinfo=UTC)  # Monday 07:00 local
    assert calendar.last_check(after_autumn_break, time(16, 30)) == datetime(
        2026, 10, 2, 16, 30, tzinfo=BERLIN)  # the Friday before the break


def test_bad_calendar_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read calendar"):
        load_ics_days(tmp_path / "missing.ics")
    broken = tmp_path / "broken.ics"
    broken.write_text("BEGIN:VCALENDAR\nthis is not ics\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a valid ICS"):
        load_ics_days(broken)
    with pytest.raises(ConfigError, match="unknown German state"):
        Calendars(BERLIN, "XX", [])


def test_the_school_week_and_public_holidays_are_settings() -> None:
    sunday, einheit = date(2026, 12, 6), date(2026, 10, 3)  # a Sunday; a public holiday (Saturday)
    whit_monday = date(2026, 5, 25)  # Pfingstmontag, a public holiday on a Monday
    usual = Calendars(BERLIN, "SL", []).for_site("x")
    assert usual.no_school_reason(sunday) == "weekend"
    assert usual.no_school_reason(whit_monday) is not None
    org = Organisation.model_validate({"school_weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                       "public_holidays": False})
    always = Calendars(BERLIN, "SL", [], weekdays=org.weekday_numbers,
                       public_holidays=org.public_holidays).for_site("x")
    assert [always.is_school_day(d) for d in (sunday, einheit, whit_monday)] == [True, True, True]
    saturdays = Calendars(BERLIN, "SL", [], weekdays=frozenset(range(6))).for_site("x")
    assert saturdays.is_school_day(date(2026, 12, 5)) and not saturdays.is_school_day(sunday)
    with pytest.raises(ValidationError):
        Organisation.model_validate({"school_weekdays": []})
