"""The one formatting layer (server/formatting.py, Babel): local times, relative phrasing that
never says "seit" about the future, German and English numbers and durations; and every text of
both catalogues in both languages with the same placeholders (issue 16)."""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server import formatting as f
from server.i18n import _CATALOGUE, alert_summary, annotation_text
from server.org import Organisation
from server.web import texts

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # Wednesday, 09:00 in Berlin
LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(("moment", "zone", "de", "en"), [
    (NOW, f.DEFAULT_ZONE, "Mi 02.12.2026, 09:00", "Wed 2 Dec 2026, 09:00"),
    (NOW, LONDON, "Mi 02.12.2026, 08:00", "Wed 2 Dec 2026, 08:00"),  # the district's zone
    (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), f.DEFAULT_ZONE,  # summer time began at 02:00
     "So 29.03.2026, 03:30", "Sun 29 Mar 2026, 03:30"),
    (datetime(2026, 12, 2, 8, 0), f.DEFAULT_ZONE,  # naive: UTC
     "Mi 02.12.2026, 09:00", "Wed 2 Dec 2026, 09:00"),
    (None, f.DEFAULT_ZONE, "–", "–"),
])
def test_date_time_is_local(moment: datetime | None, zone: ZoneInfo, de: str, en: str) -> None:
    assert (f.date_time(moment, zone, "de"), f.date_time(moment, zone, "en")) == (de, en)


def test_csv_times_and_days() -> None:
    assert f.csv_time(NOW, f.DEFAULT_ZONE, "de") == "02.12.2026 09:00"
    assert f.csv_time(NOW, f.DEFAULT_ZONE, "en") == "2 Dec 2026 09:00"
    assert f.csv_time(None) == ""
    assert (f.day(date(2026, 11, 16), "de"), f.day(date(2026, 11, 16), "en")) == (
        "16.11.2026", "16 Nov 2026")


@pytest.mark.parametrize(("back", "since_de", "since_en", "ago_de", "ago_en"), [
    (timedelta(hours=2), "seit 2 Std.", "for 2 hrs", "vor 2 Std.", "2 hr ago"),
    (timedelta(minutes=5), "seit 5 Min.", "for 5 mins", "vor 5 Min.", "5 min ago"),
    (timedelta(days=3), "seit 3 Tg.", "for 3 days", "vor 3 Tagen", "3 days ago"),
    (timedelta(seconds=20), "seit gerade eben", "just now", "gerade eben", "just now"),
    # A pending alert's start or a cabinet's clock ahead: clamped to now, never in the future.
    (-timedelta(hours=2), "seit gerade eben", "just now", "gerade eben", "just now"),
])
def test_relative_phrasing(back: timedelta, since_de: str, since_en: str, ago_de: str,
                           ago_en: str) -> None:
    moment = NOW - back
    assert (f.since(moment, NOW, "de"), f.since(moment, NOW, "en")) == (since_de, since_en)
    assert (f.ago(moment, NOW, "de"), f.ago(moment, NOW, "en")) == (ago_de, ago_en)


@pytest.mark.parametrize(("value", "digits", "grouping", "de", "en"), [
    (1234.56, 1, True, "1.234,6", "1,234.6"),
    (12.0, 1, True, "12", "12"),
    (-3.25, 2, True, "-3,25", "-3.25"),
    (1234567.125, 3, False, "1234567,125", "1234567.125"),
    (0, 1, True, "0", "0"),
])
def test_numbers(value: float, digits: int, grouping: bool, de: str, en: str) -> None:
    assert f.number(value, "de", digits, grouping) == de
    assert f.number(value, "en", digits, grouping) == en


@pytest.mark.parametrize(("seconds", "de", "en"), [
    (5 * 86400, "5 Tage", "5 days"), (86400, "1 Tag", "1 day"), (2.5 * 86400, "2,5 Tage", "2.5 days"),
    (12 * 3600, "12 Stunden", "12 hours"), (3600, "1 Stunde", "1 hour"),
    (1800, "0,5 Stunden", "0.5 hours"), (-5, "0 Stunden", "0 hours"),
])
def test_durations(seconds: float, de: str, en: str) -> None:
    assert (f.duration(seconds, "de"), f.duration(seconds, "en")) == (de, en)


@pytest.mark.parametrize(("key", "value", "de", "en"), [
    ("since", "2026-12-01T12:05:00+00:00", "Di 01.12.2026, 13:05", "Tue 1 Dec 2026, 13:05"),
    ("power_w", "1234.5", "1.234,5", "1,234.5"),
    ("temperature_c", "41.25", "41,2", "41.2"),
    ("full_charges", "1200", "1.200", "1,200"),
    ("device", "1234", "1234", "1234"),  # an id, not a measurement
    ("check", "16:30", "16:30", "16:30"),
    ("error", "timeout", "timeout", "timeout"),
])
def test_annotations_are_shown_local(key: str, value: str, de: str, en: str) -> None:
    assert (annotation_text(key, value, f.DEFAULT_ZONE, "de"),
            annotation_text(key, value, f.DEFAULT_ZONE, "en")) == (de, en)


ORG = Organisation.model_validate({
    "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nord"}],
    "schools": [{"site": "gs-nord", "name": "Grundschule Nord", "municipality": "nord"},
                {"site": "gs-ohne", "name": "Grundschule ohne Raum", "municipality": "nord"}],
    "cabinets": [{"school": "gs-nord", "id": "c1", "name": "Raum 12", "slots": {7: "GSN-0007"}},
                 {"school": "gs-ohne", "id": "c1"}],
})


@pytest.mark.parametrize(("labels", "lang", "expected"), [
    ({"site": "gs-nord", "cabinet": "c1", "slot": "7", "asset_tag": "GSN-0007"}, "de",
     "Schrank Raum 12 (Grundschule Nord), Fach 7: iPad GSN-0007 lädt zu lange "
     "(seit Di 01.12.2026, 13:05)"),
    ({"site": "gs-nord", "cabinet": "c1", "slot": "7", "asset_tag": "GSN-0007"}, "en",
     "Cabinet Raum 12 (Grundschule Nord), slot 7: iPad GSN-0007 charging too long "
     "(since Tue 1 Dec 2026, 13:05)"),
    # A slot the inventory holds no iPad for (the alert has no asset_tag label): said in words.
    ({"site": "gs-nord", "cabinet": "c1", "slot": "8"}, "de",
     "Schrank Raum 12 (Grundschule Nord), Fach 8: iPad ohne Inventarnr. lädt zu lange "
     "(seit Di 01.12.2026, 13:05)"),
    # The cabinet has no name: its id, the school by name.
    ({"site": "gs-ohne", "cabinet": "c1", "slot": "2", "asset_tag": "X-2"}, "de",
     "Schrank c1 (Grundschule ohne Raum), Fach 2: iPad X-2 lädt zu lange (seit Di 01.12.2026, 13:05)"),
    # Nothing configured: the ids.
    ({"site": "gs-fremd", "cabinet": "k9", "slot": "1", "asset_tag": "Y-1"}, "de",
     "Schrank k9 (gs-fremd), Fach 1: iPad Y-1 lädt zu lange (seit Di 01.12.2026, 13:05)"),
])
def test_summaries_name_school_cabinet_and_asset_tag(labels: dict[str, str], lang: str,
                                                     expected: str) -> None:
    annotations = {"since": "2026-12-01T12:05:00+00:00"}
    summary = alert_summary({"alertname": "charging_too_long", **labels}, annotations,
                            lang, ORG)  # type: ignore[arg-type]
    assert summary == expected


# -- both catalogues, both languages ----------------------------------------------------------

def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize(("name", "de", "en"), [
    ("server.i18n", _CATALOGUE["de"], _CATALOGUE["en"]),
    ("server.web.texts", texts._DE, texts._EN),
])
def test_every_text_has_both_languages_with_the_same_placeholders(
        name: str, de: Mapping[str, str], en: Mapping[str, str]) -> None:
    assert sorted(set(de) ^ set(en)) == [], name
    for key in de:
        assert de[key].strip() and en[key].strip(), (name, key)
        assert _fields(de[key]) == _fields(en[key]), (name, key)
