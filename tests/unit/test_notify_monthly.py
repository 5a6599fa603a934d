"""The monthly school report by e-mail (server/notify/monthly.py): due once, at the digest's time
on the first school day of a month (the real Saarland calendar), only for schools with e-mail
contacts, not when switched off, not again after a restart; queued and retried through the outbox
like every notification; its text in German (by default) and English, with the figures of a known
month from a store with known daily roll-ups. One test sends it through a real SMTP server.

A fake clock throughout; times are local (Europe/Berlin); nothing sleeps.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert

from cabinet_agent.common.protocol import ChargeSession, SessionEnd
from server.alerts.routing import Receiver
from server.alerts.state import StoredState
from server.assets import org_slots
from server.battery import BatteryAgeing
from server.history.reports import Report
from server.history.source import ReportSource
from server.inventory import Inventory
from server.notify import Notification, Notifier, NotifyError, NotifySettings
from server.notify.dispatch import Delivery
from server.notify.email import EmailNotifier
from server.notify.monthly import MonthlyReports, previous_month, report_url
from server.notify.sender import Sender
from server.notify.settings import DeliverySettings
from server.org import Organisation
from server.schoolcal import Calendars
from server.store import open_store
from server.store.schema import daily_schools, rollup_days
from tests.integration.test_notif_email import _settings, smtp_server  # noqa: F401 (its fixture)
from tests.support.store import store_at
from tests.unit.test_readable_texts import DECIMAL_POINT, ISO

BERLIN: Final = ZoneInfo("Europe/Berlin")
SHIPPED: Final = Path(__file__).parents[2] / "deploy" / "calendars" / "saarland-schulferien-2025-2027.ics"
CALENDARS: Final = Calendars(BERLIN, "SL", [SHIPPED])
DIGEST: Final = time(7, 15)
BASE: Final = "https://ladewache.kreis.example/"
PRICE: Final = 0.30
WORN: Final = 12  # PARK-1 … PARK-12 worn (52 % … 74 %), PARK-13 healthy (95 %)

ORG: Final = Organisation.model_validate({
    "district": "Landkreis Test", "district_team": "kreis-it",
    "teams": [{"id": "kreis-it", "name": "Schul-IT Kreis",
               "contacts": {"email": ["it@kreis.example"]}}],
    "municipalities": [{"id": "nk", "name": "Neunkirchen"}],
    "schools": [
        {"site": "gs-park", "name": "Grundschule am Park", "municipality": "nk",
         "contacts": {"email": ["sekretariat@gs-park.example"]}},
        {"site": "gs-linde", "name": "Grundschule Linde", "municipality": "nk",  # no e-mail
         "contacts": {"webhooks": [{"url": "https://hooks.example/linde"}]}},
        {"site": "gs-berg", "name": "Gesamtschule Berg", "municipality": "nk"},  # no contacts
        {"site": "gs-neu", "name": "Grundschule Neubau", "municipality": "nk",  # nothing recorded
         "contacts": {"email": ["neu@gs-neu.example"]}},
    ],
    "cabinets": [{"school": "gs-park", "id": "k1", "name": "Raum 12",
                  "slots": {n: f"PARK-{n}" for n in range(1, WORN + 2)}}],
})
WITH_DATA: Final = ("gs-park", "gs-linde", "gs-berg")

OCTOBER: Final = previous_month(date(2026, 11, 1))
NOVEMBER: Final = previous_month(date(2026, 12, 1))
DECEMBER: Final = previous_month(date(2027, 1, 1))


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A local time on that day, in UTC as the collector's clock gives it."""
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN).astimezone(UTC)


# -- a store with known roll-ups -----------------------------------------------------------------

def known_month(engine: Engine, site: str, first: date, last: date) -> None:
    """Every school day of the month: 7 of 8 iPads ready at school start, 8 sessions of
    1,234.5 Wh, every iPad judged at the return check, one not back on each of the first three
    school days; every day: the cabinet online 97.5 % of the known time. November 2026 (21 school
    days): 87,5 %, 3 not returned, 168 sessions, 25.9245 kWh (7.78 € at 0.30 €/kWh)."""
    days, rows, day = [], [], first
    while day <= last:
        days.append(day)
        day += timedelta(days=1)
    school_days = [d for d in days if CALENDARS.for_site(site).is_school_day(d)]
    for d in days:
        school = d in school_days
        rows.append({"day": d, "site": site, "school_day": int(school),
                     "ready": 7 if school else 0, "ready_known": 8 if school else 0,
                     "not_returned": int(school and d in school_days[:3]),
                     "return_known": 8 if school else 0, "sessions": 8 if school else 0,
                     "energy_wh": 1234.5 if school else 0.0,
                     "online_s": 84_240.0, "known_s": 86_400.0})
    with engine.begin() as db:
        db.execute(insert(daily_schools), rows)
        db.execute(insert(rollup_days), [{"day": d, "site": site, "computed_at": at(last, 23)}
                                         for d in days])


def _ageing() -> BatteryAgeing:
    """Each iPad's first five full charges at 10 Wh of taper, the last five lower: PARK-n at
    5 + 0.2 n Wh (52 % … 74 %: worn), PARK-13 at 9.5 Wh (95 %: fine)."""
    ageing = BatteryAgeing()
    start = datetime(2026, 9, 1, 12, tzinfo=UTC)
    for n in range(1, WORN + 2):
        recent = 5.0 + 0.2 * n if n <= WORN else 9.5
        for i, taper in enumerate([10.0] * 5 + [recent] * 5):
            began = start + timedelta(days=i)
            ageing.add(ChargeSession(slot=n, asset_tag=f"PARK-{n}", started_at=began,
                                     ended_at=began + timedelta(hours=2), duration_s=7200.0,
                                     energy_wh=40.0, peak_w=18.0, end=SessionEnd.FULL,
                                     taper_wh=taper))
    return ageing


DEC_1_0715: Final = at(date(2026, 12, 1), 7, 15)  # Tuesday: the first school day of December


@dataclass
class Clock:
    now: datetime = DEC_1_0715

    def __call__(self) -> datetime:
        return self.now


def report_source(org: Organisation = ORG, clock: Callable[[], datetime] | None = None
                  ) -> ReportSource:
    """October, November and December 2026 recorded for the schools in ``WITH_DATA``."""
    engine = open_store(None)
    for site in WITH_DATA:
        for first, last in (OCTOBER, NOVEMBER, DECEMBER):
            known_month(engine, site, first, last)
    inventory = Inventory.in_memory(lambda: datetime(2026, 9, 1, tzinfo=UTC))
    inventory.seed(org_slots(org), "server.toml")
    return ReportSource(engine, org, CALENDARS, _ageing(), inventory, PRICE, clock or Clock())


# -- the bench: the monthly reports on a fake clock ----------------------------------------------

@dataclass(frozen=True)
class Sent:
    at: datetime
    receiver: str
    notifier: str
    notification: Notification

    @property
    def local(self) -> datetime:
        return self.at.astimezone(BERLIN)


@dataclass
class _Recorder:
    bench: Bench
    receiver: str
    name: str

    def send(self, notification: Notification) -> None:
        self.bench.sent.append(Sent(self.bench.now, self.receiver, self.name, notification))


@dataclass
class Bench:
    """``MonthlyReports`` over a log store; what is due is sent at once and logged, as the outbox
    does on a delivery."""

    state: Any = field(default_factory=StoredState.in_memory)
    org: Organisation = ORG
    send_time: time | None = DIGEST
    base_url: str | None = BASE
    source: ReportSource | None = None
    sent: list[Sent] = field(default_factory=list)
    asked: list[tuple[str, date]] = field(default_factory=list)  # (site, first) per report made
    now: datetime = datetime(2000, 1, 1, tzinfo=UTC)

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = report_source(self.org)
        self.monthly = MonthlyReports(
            org=self.org, calendars=CALENDARS, reports=self._report, notifiers=self._notifiers,
            log_store=self.state, send_time=self.send_time, queued=self.state.is_queued,
            base_url=self.base_url)

    def _report(self, sites: Sequence[str], first: date, last: date) -> Report:
        assert self.source is not None
        self.asked += [(site, first) for site in sites]
        return self.source.report(sites, first, last)

    def _notifiers(self, receiver: Receiver) -> list[Notifier]:
        """As the registry builds them: an e-mail notifier for addresses, one per webhook."""
        found: list[Notifier] = []
        if receiver.contacts.email:
            found.append(_Recorder(self, receiver.id, "email"))
        found += [_Recorder(self, receiver.id, f"webhook-{i}")
                  for i, _ in enumerate(receiver.contacts.webhooks)]
        return found

    def tick(self, now: datetime) -> list[Delivery]:
        self.now = now
        due = self.monthly.due(now)
        for delivery in due:
            delivery.notifier.send(delivery.notification)
            self.state.log_sent(delivery.log_key, delivery.entry)
        return due

    def run(self, start: datetime, end: datetime, step: timedelta = timedelta(minutes=5)
            ) -> list[Sent]:
        before = len(self.sent)
        now = start
        while now <= end:
            self.tick(now)
            now += step
        return self.sent[before:]


# -- when ----------------------------------------------------------------------------------------

def test_previous_month() -> None:
    assert previous_month(date(2026, 12, 1)) == (date(2026, 11, 1), date(2026, 11, 30))
    assert previous_month(date(2027, 1, 4)) == (date(2026, 12, 1), date(2026, 12, 31))
    assert previous_month(date(2028, 3, 15)) == (date(2028, 2, 1), date(2028, 2, 29))


def test_the_report_goes_out_once_a_month_at_the_digest_time_of_its_first_school_day() -> None:
    bench = Bench()
    # Sunday 1 November to Wednesday 2 December 2026: October's report on Monday 2 November,
    # November's on Tuesday 1 December, each at 07:15, each once.
    sent = bench.run(at(date(2026, 11, 1), 0), at(date(2026, 12, 2), 23, 55))
    assert [(s.local, s.receiver, s.notifier, s.notification.key) for s in sent] == [
        (datetime(2026, 11, 2, 7, 15, tzinfo=BERLIN), "school:gs-park", "email",
         "monthly/gs-park/2026-10"),
        (datetime(2026, 12, 1, 7, 15, tzinfo=BERLIN), "school:gs-park", "email",
         "monthly/gs-park/2026-11")]
    assert [s.notification.subject for s in sent] == [
        "[Ladewache] Monatsbericht Grundschule am Park, Oktober 2026",
        "[Ladewache] Monatsbericht Grundschule am Park, November 2026"]
    assert sent[1].notification.kind == "monthly"
    assert bench.state.log_entry("monthly/gs-park/2026-11/email") is not None
    # Each school's report was made once per month (the log answers after that):
    assert sorted(bench.asked) == [("gs-neu", date(2026, 10, 1)), ("gs-neu", date(2026, 11, 1)),
                                   ("gs-park", date(2026, 10, 1)), ("gs-park", date(2026, 11, 1))]


def test_a_month_that_begins_with_a_holiday_and_a_weekend_waits_for_the_first_school_day() -> None:
    # 1 January 2027 is New Year (a Friday), then a weekend: Monday 4 January.
    bench = Bench()
    sent = bench.run(at(date(2027, 1, 1), 0), at(date(2027, 1, 5), 12))
    assert [s.local for s in sent] == [datetime(2027, 1, 4, 7, 15, tzinfo=BERLIN)]
    assert sent[0].notification.subject == (
        "[Ladewache] Monatsbericht Grundschule am Park, Dezember 2026")
    # Not one moment before the digest's time on that day:
    early = Bench()
    assert early.run(at(date(2027, 1, 4), 7, 0), at(date(2027, 1, 4), 7, 14), timedelta(minutes=1)) == []
    assert len(early.run(at(date(2027, 1, 4), 7, 15), at(date(2027, 1, 4), 7, 15))) == 1


def test_a_collector_that_was_down_then_sends_it_on_its_next_school_day() -> None:
    bench = Bench()
    sent = bench.run(at(date(2026, 12, 3), 9), at(date(2026, 12, 3), 9))  # started Thursday 9:00
    assert [s.notification.key for s in sent] == ["monthly/gs-park/2026-11"]


def test_only_schools_with_e_mail_addresses_get_it_and_only_by_e_mail() -> None:
    bench = Bench()
    bench.run(at(date(2026, 12, 1), 7, 15), at(date(2026, 12, 1), 18))
    assert {(s.receiver, s.notifier) for s in bench.sent} == {("school:gs-park", "email")}
    # The school without e-mail (a webhook only) and the one without contacts are not even asked:
    assert {site for site, _ in bench.asked} == {"gs-park", "gs-neu"}


def test_a_month_with_nothing_recorded_sends_nothing_and_is_asked_once() -> None:
    bench = Bench()
    bench.run(at(date(2026, 12, 1), 7, 15), at(date(2026, 12, 2), 18))
    assert bench.asked.count(("gs-neu", date(2026, 11, 1))) == 1
    assert not [s for s in bench.sent if s.receiver == "school:gs-neu"]


@pytest.mark.parametrize("send_time", [None])
def test_switched_off_nothing_is_sent(send_time: time | None) -> None:
    bench = Bench(send_time=send_time)
    assert bench.run(at(date(2026, 12, 1), 0), at(date(2026, 12, 2), 0)) == []
    assert bench.asked == []


def test_the_setting_is_on_by_default_and_described() -> None:
    field_info = NotifySettings.model_fields["monthly_report"]
    assert NotifySettings().monthly_report is True and field_info.description
    assert NotifySettings.model_validate({"monthly_report": False}).monthly_report is False


@pytest.mark.store
def test_the_report_is_not_sent_twice_after_a_restart(tmp_path: Path) -> None:
    first = Bench(state=StoredState(store_at(tmp_path)))
    assert len(first.run(at(date(2026, 12, 1), 7, 15), at(date(2026, 12, 1), 7, 20))) == 1
    # The collector starts again: a new state on the store, a new dispatcher.
    second = Bench(state=StoredState(store_at(tmp_path)))
    assert second.run(at(date(2026, 12, 1), 7, 25), at(date(2026, 12, 3), 12)) == []
    assert second.asked == [("gs-neu", date(2026, 11, 1))]  # nothing recorded: not logged


# -- in the collector ----------------------------------------------------------------------------

def _collector(tmp_path: Path, monthly_report: bool) -> Any:
    from server.app import Collector
    from server.config import load_server_settings
    from tests.support.procs import free_port

    config = tmp_path / "server.toml"
    config.write_text(f"""
[http]
auth = false
public_url = "{BASE}"
[notify]
monthly_report = {str(monthly_report).lower()}
[notify.smtp]
host = "127.0.0.1"
port = {free_port()}
security = "none"
timeout_s = 5
[organisation]
district_team = "it"
school_holidays = ["{SHIPPED}"]
[[organisation.teams]]
id = "it"
name = "Schul-IT"
[[organisation.municipalities]]
id = "nk"
name = "Neunkirchen"
[[organisation.schools]]
site = "gs-park"
name = "Grundschule am Park"
municipality = "nk"
[organisation.schools.contacts]
email = ["sekretariat@gs-park.example"]
""", encoding="utf-8")
    collector = Collector(load_server_settings(config), clock=Clock())
    known_month(collector.store, "gs-park", *NOVEMBER)
    return collector


@pytest.mark.parametrize("monthly_report", [True, False])
def test_the_collectors_notify_tick_queues_it_unless_switched_off(tmp_path: Path,
                                                                  monthly_report: bool) -> None:
    """``[notify] monthly_report``; the SMTP server is down: the report waits in the outbox."""
    collector = _collector(tmp_path, monthly_report)

    async def tick() -> None:
        await collector.notify_once()
        assert await collector.sender.drain(10)

    try:
        asyncio.run(tick())
        queued = [(o.log_key, o.receiver, o.notifier, o.attempts)
                  for o in collector.state.outgoing()]
    finally:
        collector.close()
    if not monthly_report:
        assert queued == []
        return
    assert queued == [("monthly/gs-park/2026-11/email", "school:gs-park", "email", 1)]


# -- through the outbox --------------------------------------------------------------------------

@dataclass
class Flaky:
    """An e-mail notifier whose first ``failures`` sends fail."""

    failures: int = 1
    retryable: bool = True
    tries: int = 0
    delivered: list[Notification] = field(default_factory=list)
    name: str = "email"

    def send(self, notification: Notification) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise NotifyError("451 try again later" if self.retryable else "550 no such mailbox",
                              retryable=self.retryable)
        self.delivered.append(notification)


def _outbox_world(flaky: Flaky, attempts: int = 5) -> tuple[MonthlyReports, Sender, StoredState,
                                                           Clock]:
    clock = Clock(at(date(2026, 12, 1), 7, 15))
    state = StoredState.in_memory()
    source = report_source(clock=clock)
    monthly = MonthlyReports(org=ORG, calendars=CALENDARS, reports=source.report,
                             notifiers=lambda r: [flaky] if r.contacts.email else [],
                             log_store=state, send_time=DIGEST, queued=state.is_queued)
    sender = Sender(outbox=state, notifier=lambda receiver, name: flaky if name == "email" else None,
                    settings=DeliverySettings(attempts=attempts, backoff_initial_s=10,
                                              backoff_max_s=60), clock=clock)
    return monthly, sender, state, clock


def test_it_is_queued_in_the_outbox_retried_and_delivered_once() -> None:
    flaky = Flaky(failures=1)
    monthly, sender, state, clock = _outbox_world(flaky)
    key = "monthly/gs-park/2026-11/email"

    async def scenario() -> None:
        for _ in range(120):  # every 10 s for 20 minutes
            sender.submit(monthly.due(clock()))
            sender.pump()
            assert await sender.drain(5)
            clock.now += timedelta(seconds=10)

    try:
        asyncio.run(scenario())
    finally:
        sender.close()
    assert flaky.tries == 2 and len(flaky.delivered) == 1  # failed once, then arrived, once
    assert flaky.delivered[0].subject.endswith("Grundschule am Park, November 2026")
    assert state.log_entry(key) is not None and not state.is_queued(key)
    assert sender.stats.delivered == 1 and sender.stats.failed == 1


def test_one_given_up_is_made_again_on_the_next_school_day_not_at_every_tick() -> None:
    flaky = Flaky(failures=1, retryable=False)  # e.g. 550: the address was refused
    monthly, sender, _, clock = _outbox_world(flaky)

    async def until(end: datetime) -> None:
        while clock.now <= end:
            sender.submit(monthly.due(clock()))
            sender.pump()
            assert await sender.drain(5)
            clock.now += timedelta(minutes=10)

    try:
        asyncio.run(until(at(date(2026, 12, 1), 23, 50)))
        assert (flaky.tries, sender.stats.given_up) == (1, 1)  # once that day, not at every tick
        assert [n.key for n in flaky.delivered] == []
        clock.now = at(date(2026, 12, 2), 7, 0)
        asyncio.run(until(at(date(2026, 12, 2), 9)))
    finally:
        sender.close()
    assert [n.key for n in flaky.delivered] == ["monthly/gs-park/2026-11"]


# -- the text ------------------------------------------------------------------------------------

def _note(lang: str = "de", base_url: str | None = BASE) -> Notification:
    org = ORG
    if lang != "de":
        schools = [s.model_dump(mode="json") for s in ORG.schools]
        schools[0]["contacts"]["lang"] = lang
        org = Organisation.model_validate(ORG.model_dump(mode="json") | {"schools": schools})
    bench = Bench(org=org, base_url=base_url)
    (sent,) = bench.run(at(date(2026, 12, 1), 7, 15), at(date(2026, 12, 1), 7, 15))
    return sent.notification


NBSP: Final = "\u00a0"


def test_the_german_text_has_the_months_figures() -> None:
    note = _note()
    assert note.subject == "[Ladewache] Monatsbericht Grundschule am Park, November 2026"
    lines = note.body.replace(NBSP, " ").splitlines()
    assert lines[:9] == [
        "Guten Tag! Der Monatsbericht der Ladewache für Grundschule am Park, November 2026:",
        "",
        "Schultage: 21",
        "Bereit zu Schulbeginn: 87,5 % (147 von 168 geprüften iPads geladen)",
        "Nicht zurückgegebene iPads: 3 (0,1 je Schultag)",
        "Ladevorgänge: 168",
        "Energie: 25,9 kWh, Stromkosten 7,78 €",
        "Schränke erreichbar: 97,5 % der Zeit",
        "",
    ]
    assert lines[9] == "Verschlissene Akkus, die am stärksten gealterten zuerst:"
    batteries = lines[10:20]  # the ten most worn, most worn first
    assert batteries[0] == "- iPad PARK-1, Raum 12 · Fach 1: Restkapazität 52,0 %"
    assert batteries[9] == "- iPad PARK-10, Raum 12 · Fach 10: Restkapazität 70,0 %"
    assert lines[20] == "… und 2 weitere im Bericht."
    assert "PARK-13" not in note.body  # healthy: not listed
    assert lines[-1] == ("Der ganze Bericht im Dashboard: https://ladewache.kreis.example/reports"
                         "?school=gs-park&from=2026-11-01&to=2026-11-30")
    assert "87,5\u00a0%" in note.body and "7,78\u00a0€" in note.body  # kept together in a mail


def test_the_english_text_for_a_contact_who_reads_english() -> None:
    note = _note("en", base_url=None)
    assert note.subject == "[Ladewache] Monthly report Grundschule am Park, November 2026"
    lines = note.body.replace(NBSP, " ").splitlines()
    assert lines[2:8] == [
        "School days: 21",
        "Ready at school start: 87.5% (147 of 168 iPads checked were charged)",
        "iPads not returned: 3 (0.1 per school day)",
        "Charge sessions: 168",
        "Energy: 25.9 kWh, electricity cost €7.78",
        "Cabinets reachable: 97.5% of the time",
    ]
    assert "- iPad PARK-1, Raum 12 · slot 1: 52.0% capacity left" in lines
    assert lines[-1] == "The dashboard shows the full report under “Reports”."


RAW_IDS: Final = re.compile(r"\bgs-park\b|\bk1\b|/k1\b")


@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_text_is_readable_local_and_names_things(lang: str) -> None:
    """The checks of test_readable_texts: no ISO or UTC time, no id where a name exists (the link
    carries the site and the period, as the report page needs), German decimals in German."""
    for base_url in (BASE, None):
        note = _note(lang, base_url)
        for line in [note.subject, *note.body.splitlines()]:
            assert not ISO.search(line), line
            if "https://" not in line:
                assert not RAW_IDS.search(line), line
                assert not re.search(r"\d{4}-\d\d-\d\d", line), line
        if lang == "de":
            assert not DECIMAL_POINT.search(note.body), note.body
        assert "Grundschule am Park" in note.body and "Raum 12" in note.body


def test_a_school_without_readiness_or_status_says_not_measured() -> None:
    from server.history.reports import DayFigures, Figures
    from server.notify.monthly import render_monthly

    figures = Figures("gs-park", "Grundschule am Park")
    figures.days[date(2026, 11, 2)] = DayFigures(date(2026, 11, 2), True, 0, 0, 1, 4, 2, 500.0)
    report = Report(*NOVEMBER, PRICE, [figures], [], figures, [])
    note = render_monthly(org=ORG, lang="de", key="k", site="gs-park", report=report,
                          figures=figures, now=at(date(2026, 12, 1), 7, 15))
    lines = note.body.replace(NBSP, " ").splitlines()
    assert "Bereit zu Schulbeginn: nicht gemessen" in lines
    assert "Schränke erreichbar: nicht gemessen" in lines
    assert "Nicht zurückgegebene iPads: 1 (1 je Schultag)" in lines
    assert "Kein Akku ist verschlissen." in lines
    assert lines[-1] == "Den ganzen Bericht zeigt das Dashboard unter „Berichte“."


def test_the_link_is_the_report_page_of_the_school_and_month() -> None:
    assert report_url(None, "gs-park", *NOVEMBER) is None
    assert report_url("https://x.example/lw/", "gs-park", *NOVEMBER) == (
        "https://x.example/lw/reports?school=gs-park&from=2026-11-01&to=2026-11-30")


# -- through a real SMTP server ------------------------------------------------------------------

@pytest.mark.integration
def test_the_report_arrives_by_e_mail(request: pytest.FixtureRequest) -> None:
    smtp = request.getfixturevalue("smtp_server")  # aiosmtpd with STARTTLS and AUTH
    email = EmailNotifier(_settings(smtp), ["sekretariat@gs-park.example"])
    clock = Clock(at(date(2026, 12, 1), 7, 15))
    state = StoredState.in_memory()
    monthly = MonthlyReports(org=ORG, calendars=CALENDARS, reports=report_source(clock=clock).report,
                             notifiers=lambda r: [email] if r.id == "school:gs-park" else [],
                             log_store=state, send_time=DIGEST, queued=state.is_queued,
                             base_url=BASE)
    sender = Sender(outbox=state, notifier=lambda receiver, name: email,
                    settings=DeliverySettings(), clock=clock)

    async def send() -> None:
        assert sender.submit(monthly.due(clock())) == 1
        sender.pump()
        assert await sender.drain(20)

    try:
        asyncio.run(send())
    finally:
        sender.close()
    ((_, recipients, message),) = smtp.mailbox.messages
    assert recipients == ["sekretariat@gs-park.example"]
    assert message["Subject"] == "[Ladewache] Monatsbericht Grundschule am Park, November 2026"
    assert message["X-Ladewache-Key"] == "monthly/gs-park/2026-11"
    body = message.get_content()
    assert "Bereit zu Schulbeginn: 87,5\u00a0% (147 von 168 geprüften iPads geladen)" in body
    assert "Energie: 25,9\u00a0kWh, Stromkosten 7,78\u00a0€" in body
    assert "- iPad PARK-1, Raum 12 · Fach 1: Restkapazität 52,0\u00a0%" in body
    assert state.log_entry("monthly/gs-park/2026-11/email") is not None
