"""What a group message says: what changed in full, the rest as a count; reminders one line per
alert; the digest's unconfirmed slots. Same fake-clock bench as test_notify_calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from server.alerts.status import AlertStatus
from server.i18n import _CATALOGUE
from server.notify.render import PAYLOAD_VERSION, render_group, render_reminder
from server.org import Organisation
from server.presence import UnconfirmedSlot
from tests.unit.test_notify_calendar import ORG, Bench, alert, at

TUESDAY = date(2026, 11, 17)
SUNDAY = date(2026, 11, 15)
MONDAY = date(2026, 11, 16)


def test_a_new_alert_joining_is_told_alone_with_a_count_of_the_rest() -> None:
    bench = Bench()
    bench.alerts = [alert("mains_lost", at(TUESDAY, 9), severity="critical"),
                    alert("door_open", at(TUESDAY, 9))]
    (first,) = bench.run(at(TUESDAY, 9), at(TUESDAY, 9, 30))
    assert first.changes == {"mains_lost": "new", "door_open": "new"}
    bench.alerts.append(alert("slot_overpower", at(TUESDAY, 10), slot=1))
    (joined,) = bench.run(at(TUESDAY, 9, 31), at(TUESDAY, 10, 30))
    body = joined.notification.body
    assert "Fach 1 (iPad P-1): ? W, mehr als die erlaubten ? W" in body  # the new one, in full ...
    assert "Tür steht zu lange offen" not in body and "Netzspannung" not in body  # ... alone
    assert "Weitere 2 Meldungen bestehen weiter." in body
    assert joined.notification.subject == "[Ladewache] 3 aktive(r) Alarm(e): Raum 12, GS am Park"
    assert joined.changes == {"slot_overpower": "new", "mains_lost": "still_open",
                              "door_open": "still_open"}
    assert joined.notification.payload["version"] == PAYLOAD_VERSION == 2


def test_a_resolution_is_told_with_a_count_of_what_still_fires() -> None:
    bench = Bench()
    bench.alerts = [alert("device_fault", at(TUESDAY, 9)),
                    alert("door_open", at(TUESDAY, 9), at(TUESDAY, 10))]
    bench.run(at(TUESDAY, 9), at(TUESDAY, 9, 30))
    (resolved,) = bench.run(at(TUESDAY, 9, 31), at(TUESDAY, 10, 30))
    assert resolved.changes == {"door_open": "resolved", "device_fault": "still_open"}
    assert "Behoben:\n- [Warnung] Schrank Raum 12 (GS am Park): Tür steht zu lange offen" in (
        resolved.notification.body)
    assert "Eine weitere Meldung besteht weiter." in resolved.notification.body
    assert "antwortet nicht" not in resolved.notification.body


def test_an_alert_that_comes_back_after_its_resolution_is_news_again() -> None:
    bench = Bench()
    bench.alerts = [alert("door_open", at(TUESDAY, 9), at(TUESDAY, 10)),
                    alert("door_open", at(TUESDAY, 11))]
    sent = bench.run(at(TUESDAY, 9), at(TUESDAY, 11, 30))
    assert [s.changes for s in sent] == [{"door_open": "new"}, {"door_open": "resolved"},
                                         {"door_open": "new"}]


def test_a_reminder_lists_every_open_alert_on_one_line() -> None:
    bench = Bench()
    bench.alerts = [alert("device_fault", at(TUESDAY, 9)), alert("door_open", at(TUESDAY, 9))]
    bench.run(at(TUESDAY, 9), at(TUESDAY, 13))
    (reminder,) = bench.run(at(TUESDAY, 13, 1), at(TUESDAY, 13, 30))
    lines = reminder.notification.body.splitlines()
    assert lines[2:5] == [
        "Weiterhin offen:",
        "- Schrank Raum 12 (GS am Park): Gerät ? antwortet nicht (?) (seit Di 17.11.2026, 09:00 – "
        "vor 4 Std.)",
        "- Schrank Raum 12 (GS am Park): Tür steht zu lange offen (seit Di 17.11.2026, 09:00 – "
        "vor 4 Std.)",
    ]
    assert reminder.notification.payload["message"] == "reminder"


@pytest.mark.parametrize(("lang", "count", "line"), [
    ("de", 1, "Eine weitere Meldung besteht weiter."),
    ("de", 3, "Weitere 3 Meldungen bestehen weiter."),
    ("en", 1, "1 more alert still open."),
    ("en", 3, "3 more alerts still open."),
])
def test_the_count_line_in_both_languages(lang: str, count: int, line: str) -> None:
    now = datetime(2026, 11, 17, 9, tzinfo=UTC)
    new = AlertStatus(alert("slot_overpower", now, slot=1), alert("x", now).state(now))
    old = [AlertStatus(alert("door_open", now - timedelta(hours=n + 1)), new.state)
           for n in range(count)]
    note = render_group(org=ORG, lang=lang, key="k", receiver="IT", site="gs-park",  # type: ignore[arg-type]
                        cabinet="k1", firing=[new], resolved=[], now=now, still_open=old)
    assert line in note.body.splitlines()


def test_an_english_reminder() -> None:
    now = datetime(2026, 11, 17, 9, tzinfo=UTC)
    door = alert("door_open", now - timedelta(hours=5))
    note = render_reminder(org=ORG, lang="en", key="k", receiver="IT", site="gs-park",
                           cabinet="k1", still_open=[AlertStatus(door, door.state(now))], now=now)
    assert note.subject == "[Ladewache] Reminder: 1 open alert(s): Raum 12, GS am Park"
    assert ("- Cabinet Raum 12 (GS am Park): door open too long (since Tue 17 Nov 2026, 05:00 – "
            "5 hr ago)") in (
        note.body.splitlines())


def test_every_text_has_both_languages() -> None:
    assert set(_CATALOGUE["de"]) == set(_CATALOGUE["en"])


# --- the digest ---------------------------------------------------------------------------------

def _slots(site: str) -> list[UnconfirmedSlot]:
    assert site == "gs-park"
    since = datetime(2026, 11, 15, 17, 5, tzinfo=UTC)  # Sunday 18:05 local
    return [UnconfirmedSlot("gs-park", "k1", 3, "P-3", since, since - timedelta(hours=2)),
            UnconfirmedSlot("gs-park", "k1", 4, None, None, None)]


def test_the_digest_lists_unconfirmed_slots_even_when_nothing_fires() -> None:
    asked: list[datetime] = []

    def slots(site: str) -> list[UnconfirmedSlot]:
        asked.append(bench.now)
        return _slots(site)

    bench = Bench(digest_time=time(7, 15), unconfirmed=slots)
    sent = bench.run(at(SUNDAY, 7), at(MONDAY, 12))
    (digest,) = sent  # Sunday is no school day; Monday once
    assert asked == [at(MONDAY, 7, 15)]  # not again at every tick once it is sent
    assert (digest.receiver, digest.local.time()) == ("school:gs-park", time(7, 15))
    note = digest.notification
    assert note.subject == ("[Ladewache] Tagesübersicht GS am Park, 16.11.2026: 0 offene(r) "
                            "Alarm(e), 2 Fach/Fächer nicht bestätigt")
    lines = note.body.splitlines()
    assert "Keine offenen Alarme." in lines
    assert lines[-3].startswith("Nicht bestätigt seit …")
    assert lines[-2:] == [
        "- Raum 12, GS am Park, Fach 3, iPad P-3: nicht bestätigt seit So 15.11.2026, 18:05",
        "- Raum 12, GS am Park, Fach 4: nicht bestätigt seit unbekannt",
    ]
    assert note.payload["unconfirmed"][0] == {
        "cabinet": "k1", "title": "Raum 12, GS am Park", "slot": 3, "asset_tag": "P-3",
        "unseen_since": "2026-11-15T17:05:00+00:00", "last_draw_at": "2026-11-15T15:05:00+00:00"}


def test_the_digest_lists_alerts_and_unconfirmed_slots_in_english() -> None:
    org = Organisation.model_validate(ORG.model_dump(mode="json") | {"schools": [
        ORG.schools[0].model_dump(mode="json") | {"contacts": {"email": ["s@x.example"],
                                                               "lang": "en"}}]})
    bench = Bench(org=org, digest_time=time(7, 15), unconfirmed=_slots)
    bench.alerts = [alert("door_open", at(SUNDAY, 20))]
    digests = [s for s in bench.run(at(MONDAY, 7), at(MONDAY, 7, 20))
               if s.notification.kind == "digest"]
    (digest,) = digests
    lines = digest.notification.body.splitlines()
    assert ("- Raum 12, GS am Park, slot 3, iPad P-3: not confirmed since Sun 15 Nov 2026, 18:05"
            in lines)
    assert any("door open too long" in line for line in lines)
    assert digest.notification.subject.endswith("1 open alert(s), 2 slot(s) not confirmed")


def test_a_quiet_school_gets_no_digest_and_is_asked_once_a_day() -> None:
    asked: list[datetime] = []

    def nothing(site: str) -> list[UnconfirmedSlot]:
        asked.append(bench.now)
        return []

    bench = Bench(digest_time=time(7, 15), unconfirmed=nothing)
    assert bench.run(at(MONDAY, 7), at(TUESDAY, 8)) == []
    assert asked == [at(MONDAY, 7, 15), at(TUESDAY, 7, 15)]
    bench.alerts = [alert("door_open", at(TUESDAY, 9))]  # something fires later that day:
    digests = [s for s in bench.run(at(TUESDAY, 9), at(TUESDAY, 9, 5))
               if s.notification.kind == "digest"]
    assert [d.local.time() for d in digests] == [time(9, 0)]  # the digest goes out then
    assert len(asked) == 2


def test_the_digest_is_not_sent_twice_after_a_restart() -> None:
    first = Bench(digest_time=time(7, 15), unconfirmed=_slots)
    assert len(first.run(at(MONDAY, 7, 15), at(MONDAY, 7, 16))) == 1
    second = Bench(state=first.state, digest_time=time(7, 15), unconfirmed=_slots)
    assert second.run(at(MONDAY, 7, 17), at(MONDAY, 12)) == []


def test_with_a_public_url_a_message_links_the_cabinet_and_the_digest_the_missing_list() -> None:
    from server.notify.render import render_digest

    now = datetime(2026, 11, 17, 9, tzinfo=UTC)
    firing = AlertStatus(alert("door_open", now), alert("x", now).state(now))
    base = "https://ladewache.kreis.example/"
    note = render_group(org=ORG, lang="de", key="k", receiver="IT", site="gs-park", cabinet="k1",
                        firing=[firing], resolved=[], now=now, base_url=base)
    link = "https://ladewache.kreis.example/cabinets/gs-park/k1"
    assert note.body.splitlines()[-1] == (
        f"Quittieren, Stummschalten oder „Techniker vor Ort“, mit einem Tipp: {link}")
    assert note.payload["url"] == link
    reminder = render_reminder(org=ORG, lang="en", key="k", receiver="IT", site="gs-park",
                               cabinet="k1", still_open=[firing], now=now, base_url=base)
    assert reminder.body.splitlines()[-1].endswith(link)
    digest = render_digest(org=ORG, lang="de", key="d", site="gs-park", day=TUESDAY,
                           statuses=[firing], now=now, base_url=base)
    missing = "https://ladewache.kreis.example/missing?school=gs-park"
    assert digest.body.splitlines()[-1] == f"Fehlende iPads zum Ausdrucken: {missing}"
    assert digest.payload["missing_url"] == missing
    plain = render_group(org=ORG, lang="de", key="k", receiver="IT", site="gs-park", cabinet="k1",
                         firing=[firing], resolved=[], now=now)
    assert "https://" not in plain.body and plain.payload["url"] is None
