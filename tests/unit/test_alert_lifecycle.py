"""Alert lifecycle as timelines: pending, grouping, group wait/interval, repeat, resolve, inhibition,
silences, acknowledgement, routing, digest and the notification log across a restart.

t is seconds after T0 (Monday 2026-11-02 00:00 UTC); nothing sleeps.
"""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from cabinet_agent.common.protocol import DeviceHealth, DoorState, SlotState
from server.alerts.silence import Silence, SilenceKind, Weekly
from server.alerts.state import StoredState
from server.alerts.store import Ack
from server.notify.dispatch import GroupTiming
from server.org import Organisation
from tests.support.alert_timeline import T0, AlertTimeline
from tests.support.store import store_at

ORG = Organisation.model_validate({
    "district": "Landkreis Test",
    "district_team": "kreis-it",
    "teams": [
        {"id": "kreis-it", "name": "Schul-IT Kreis", "contacts": {"email": ["it@kreis.example"]}},
        {"id": "ott-it", "name": "IT Ottweiler", "contacts": {"email": ["it@ottweiler.example"]}},
    ],
    "municipalities": [
        {"id": "neunkirchen", "name": "Neunkirchen"},
        {"id": "ottweiler", "name": "Ottweiler", "team": "ott-it"},
    ],
    "schools": [
        {"site": "gs-park", "name": "GS am Park", "municipality": "neunkirchen",
         "contacts": {"email": ["sekretariat@gs-park.example"]}},
        {"site": "gs-ott", "name": "GS Ottweiler", "municipality": "ottweiler"},
    ],
    "cabinets": [
        {"school": "gs-park", "id": "k1", "slots": {"1": "P-1", "2": "P-2", "3": "P-3", "4": "P-4"}},
        {"school": "gs-park", "id": "k2"},
        {"school": "gs-ott", "id": "k1"},
    ],
})

FAULTY = [DeviceHealth(name="meter-1", ok=False, error="timeout")]
SCHOOL_MORNING = T0 + timedelta(hours=8)  # 09:00 local: within school hours
IDLE = [SlotState.PRESENT_IDLE, SlotState.CHARGED, SlotState.CHARGED, SlotState.CHARGED]


def _timeline(**kwargs: object) -> AlertTimeline:
    defaults: dict[str, object] = {"org": ORG, "group_wait_s": 30, "group_interval_s": 300,
                                   "repeat_interval_s": 3600, "offline_pending_s": 60}
    return AlertTimeline(**{**defaults, **kwargs})  # type: ignore[arg-type]


def test_pending_then_one_notification_after_group_wait() -> None:
    tl = _timeline()
    k1 = tl.cabinet()
    tl.at(0, k1.online, k1.telemetry).at(1, lambda: k1.telemetry(devices=FAULTY)).run(until=200)
    assert tl.sent_between(0, 90) == []  # pending 60 s, then group_wait 30 s
    (sent,) = tl.sent_between(91, 92)
    assert (sent.receiver, sent.firing) == ("team:kreis-it", ["device_fault"])
    assert sent.notification.subject == "[Ladewache] 1 aktive(r) Alarm(e): k1, GS am Park"
    assert "Schrank k1 (GS am Park): Gerät meter-1 antwortet nicht" in sent.notification.body
    assert tl.sent_between(93, 200) == []


def test_a_safety_alert_does_not_wait_for_group_wait() -> None:
    tl = _timeline()
    k1 = tl.cabinet()
    tl.at(0, k1.online, k1.telemetry).at(1, k1.offline).run(until=200)
    (sent,) = tl.sent  # pending 60 s, then out at once (server/alerts/cadence.py)
    assert (sent.t, sent.firing) == (61, ["cabinet_offline"])
    assert "Schrank k1 (GS am Park) ist offline" in sent.notification.body


def test_alerts_arriving_together_go_out_in_one_message() -> None:
    tl = _timeline(start=SCHOOL_MORNING)
    k1 = tl.cabinet()
    tl.at(0, k1.online, k1.telemetry)
    tl.at(100, lambda: k1.telemetry(door=DoorState.OPEN, devices=FAULTY))
    tl.run(until=2000)
    # device_fault fires at 160, door_open at 1000: the first opens the group (wait 30 s) ...
    first, second = tl.sent
    assert (first.t, first.firing) == (190, ["device_fault"])
    # ... the second waits for the group interval after the last flush (190 + 300 = 490 ... next
    # flush after door_open fired at 1000 is the first interval boundary past it: 1090).
    assert second.firing == ["device_fault", "door_open"]
    assert 1000 < second.t <= 1000 + 300


def test_each_cabinet_is_its_own_group() -> None:
    tl = _timeline()
    k1, k2 = tl.cabinet(cabinet="k1"), tl.cabinet(cabinet="k2")
    tl.at(0, k1.online, k2.online).at(1, k1.offline, k2.offline).run(until=200)
    assert sorted(s.cabinet or "" for s in tl.sent_between(61, 62)) == ["k1", "k2"]


def test_repeat_interval_and_acknowledgement() -> None:
    tl = _timeline(repeat_interval_s=1000, group_interval_s=100)
    k1 = tl.cabinet()
    tl.at(0, k1.online).at(1, k1.offline).run(until=3000)
    assert [s.t for s in tl.sent] == [61, 1061, 2061]  # repeated, as nothing changed

    tl = _timeline(repeat_interval_s=1000, group_interval_s=100)
    k1 = tl.cabinet()
    tl.at(0, k1.online).at(1, k1.offline).run(until=500)
    (alert,) = tl.active()
    tl.state.acknowledge(Ack(alert.fingerprint, alert.alert.active_at, "Frau Weber",
                             "fahre morgen hin", tl.now))
    tl.run(until=3000)
    assert [s.t for s in tl.sent] == [61]  # acknowledged: not repeated ...
    assert tl.firing() == ["cabinet_offline"]  # ... but still firing
    (status,) = tl.active()
    assert status.ack is not None and status.ack.comment == "fahre morgen hin"


def test_resolution_is_notified_and_power_loss_told_from_network_loss() -> None:
    tl = _timeline(group_interval_s=60)
    k1 = tl.cabinet()
    tl.at(0, k1.online).at(1, k1.offline).at(200, k1.online).run(until=400)
    firing, resolved = tl.sent
    assert firing.firing == ["cabinet_offline"] and resolved.resolved == ["cabinet_offline"]
    assert resolved.t <= 200 + 60
    assert "Netzwerkunterbrechung" in resolved.notification.body  # same boot id
    assert resolved.notification.subject.startswith("[Ladewache] behoben")

    tl = _timeline(group_interval_s=60)
    k1 = tl.cabinet()

    def reboot() -> list[object]:
        k1.boot = "b" * 32  # a new boot id: the Pi lost power
        return k1.online()

    tl.at(0, k1.online).at(1, k1.offline).at(200, reboot).run(until=400)
    assert tl.sent[-1].notification.payload["alerts"][0]["annotations"]["return_cause"] == "power_loss"
    assert "Stromausfall" in tl.sent[-1].notification.body


def test_a_blip_shorter_than_the_pending_period_sends_nothing() -> None:
    tl = _timeline()
    k1 = tl.cabinet()
    tl.at(0, k1.online).at(1, k1.offline).at(30, k1.online).run(until=1000)
    assert tl.sent == [] and tl.statuses() == []


def test_offline_inhibits_everything_of_its_cabinet() -> None:
    tl = _timeline(offline_pending_s=0)
    k1 = tl.cabinet()
    tl.at(0, k1.online, lambda: k1.telemetry(IDLE))  # not charging fires at 900 ...
    tl.at(10, k1.offline).run(until=2000)  # ... on the last state known, muted by the offline alert
    (status,) = tl.active("ipad_not_charging")
    assert status.state.value == "firing" and status.inhibited_by is not None
    assert [s.firing for s in tl.sent] == [["cabinet_offline"]]


def test_device_fault_inhibits_slot_alerts_but_not_the_door() -> None:
    tl = _timeline(group_wait_s=1, start=SCHOOL_MORNING)
    k1 = tl.cabinet()
    tl.at(0, k1.online, lambda: k1.telemetry(IDLE, door=DoorState.OPEN, devices=FAULTY))
    tl.run(until=1200)
    assert tl.firing() == ["device_fault", "door_open", "ipad_not_charging"]
    (idle,) = tl.active("ipad_not_charging")
    assert idle.inhibited_by == tl.active("device_fault")[0].fingerprint
    assert tl.active("door_open")[0].inhibited_by is None
    notified = sorted({name for s in tl.sent for name in s.firing})
    assert notified == ["device_fault", "door_open"]


def test_critical_temperature_inhibits_the_warning() -> None:
    tl = _timeline(group_wait_s=1)
    k1 = tl.cabinet()
    tl.at(0, k1.online, lambda: k1.telemetry(temperature=52.0)).run(until=400)
    severities = {s.alert.labels["severity"]: s for s in tl.active("over_temperature")}
    assert severities["critical"].inhibited_by is None
    assert severities["warning"].inhibited_by == severities["critical"].fingerprint
    assert [a["severity"] for a in tl.sent[0].notification.payload["alerts"]] == ["critical"]


def test_a_silence_mutes_and_its_expiry_lets_the_alert_through() -> None:
    tl = _timeline()
    k1 = tl.cabinet()
    silence = Silence({"site": "gs-park", "cabinet": "k1"}, tl.moment(0), tl.moment(500),
                      "Herr Klein", "Umbau")
    tl.state.add_silence(silence)
    tl.at(0, k1.online).at(1, k1.offline).run(until=499)
    assert tl.sent == []
    (status,) = tl.active()
    assert status.silenced_by == (silence.id,) and status.state.value == "firing"
    tl.run(until=600)
    (sent,) = tl.sent
    assert 500 <= sent.t <= 531  # a new group: group_wait after the silence ended


def test_expiring_a_silence_early_ends_it() -> None:
    state = StoredState.in_memory()
    tl = _timeline(state=state)
    k1 = tl.cabinet()
    silence = Silence({"site": "gs-park"}, tl.moment(0), tl.moment(10_000), "x", "")
    state.add_silence(silence)
    tl.at(0, k1.online).at(1, k1.offline).at(300, lambda: state.expire_silence(silence.id, tl.now))
    tl.run(until=400)
    assert [s.t for s in tl.sent] == [300]  # a safety alert: at once
    assert state.expire_silence(silence.id, tl.now) is None  # already over


def test_technician_on_site_mutes_one_cabinet_until_they_leave() -> None:
    tl = _timeline()
    k1, k2 = tl.cabinet(cabinet="k1"), tl.cabinet(cabinet="k2")
    tl.state.add_silence(Silence({"site": "gs-park", "cabinet": "k1"}, tl.moment(0),
                                 tl.moment(1000), "Techniker Maier", "Tausch Netzteil",
                                 SilenceKind.TECHNICIAN))
    tl.at(0, k1.online, k2.online).at(1, k1.offline, k2.offline).run(until=999)
    assert [s.cabinet for s in tl.sent] == ["k2"]
    tl.run(until=1100)
    assert [s.cabinet for s in tl.sent] == ["k2", "k1"]
    with pytest.raises(ValueError, match="one cabinet"):
        Silence({"site": "gs-park"}, T0, T0 + timedelta(hours=1), "x", "", SilenceKind.TECHNICIAN)


def test_a_weekly_silence_mutes_only_in_its_window() -> None:
    # Mondays 07:00–08:00 local (06:00–07:00 UTC in November): the caretaker's weekly check.
    weekly = Weekly(frozenset({0}), time(7, 0), time(8, 0), "Europe/Berlin")
    tl = _timeline(start=T0 + timedelta(hours=6), group_interval_s=60)
    tl.state.add_silence(Silence({"site": "gs-park"}, T0, T0 + timedelta(days=365), "Hausmeister",
                                 "Wochenkontrolle", weekly=weekly))
    k1 = tl.cabinet()
    tl.at(0, k1.online).at(1, lambda: k1.telemetry(devices=FAULTY))
    tl.run(until=3599)
    assert tl.sent == []  # device_fault fires at 61, but the window runs until t=3600
    tl.run(until=3700)
    (sent,) = tl.sent
    assert 3600 <= sent.t <= 3631 and sent.firing == ["device_fault"]
    assert weekly.contains(T0 + timedelta(days=7, hours=6, minutes=30))  # next Monday
    assert not weekly.contains(T0 + timedelta(days=1, hours=6, minutes=30))  # Tuesday


def test_routing_to_the_municipality_team() -> None:
    tl = _timeline()
    park, ott = tl.cabinet(site="gs-park"), tl.cabinet(site="gs-ott")
    unknown = tl.cabinet(site="gs-neu")  # not configured: the district's team
    tl.at(0, park.online, ott.online, unknown.online)
    tl.at(1, park.offline, ott.offline, unknown.offline).run(until=100)
    by_site = {s.notification.payload["site"]: s.receiver for s in tl.sent}
    assert by_site == {"gs-park": "team:kreis-it", "gs-ott": "team:ott-it", "gs-neu": "team:kreis-it"}


@pytest.mark.store
def test_the_notification_log_survives_a_restart(tmp_path: Path) -> None:
    tl = _timeline(state=StoredState(store_at(tmp_path)))
    k1 = tl.cabinet()
    tl.at(0, k1.online).at(1, k1.offline).run(until=200)
    assert len(tl.sent) == 1

    # A new process: new store connection and state, fleet, engine, dispatcher.
    again = _timeline(state=StoredState(store_at(tmp_path)), start=tl.now)
    k1 = again.cabinet()
    again.at(0, k1.offline).run(until=600)  # the retained Last Will arrives again
    assert again.sent == []  # nothing new: already sent, repeat interval not over
    assert again.firing() == ["cabinet_offline"]
    again.run(until=4000)
    (repeat,) = again.sent  # the repeat interval counts from the send before the restart, ...
    assert 61 + 3600 - 200 <= repeat.t <= 61 + 3600 - 200 + 300  # ... at the next group flush


def test_a_failed_send_is_tried_again_at_the_next_flush() -> None:
    tl = _timeline(group_interval_s=60)
    k1 = tl.cabinet()
    tl.receiver_down = True
    tl.at(0, k1.online).at(1, k1.offline).run(until=100)
    assert tl.sent == []
    tl.receiver_down = False
    tl.run(until=200)
    assert [s.t for s in tl.sent] == [121]  # failed at 61 (at once), again 60 s later


def test_resolved_is_not_sent_when_switched_off_but_a_return_is_news() -> None:
    tl = _timeline(group_interval_s=60, send_resolved=False)
    k1 = tl.cabinet()
    tl.at(0, k1.online).at(1, k1.offline).at(200, k1.online).at(300, k1.offline).run(until=600)
    assert [s.firing for s in tl.sent] == [["cabinet_offline"], ["cabinet_offline"]]
    assert all(s.resolved == [] for s in tl.sent)


def test_daily_digest_per_school_on_school_days_only() -> None:
    # Sunday 2026-11-08 to Tuesday: a digest Monday and Tuesday at 07:15 local (06:15 UTC).
    sunday = T0 + timedelta(days=6)
    tl = _timeline(start=sunday, digest=True, step_s=60, repeat_interval_s=10 * 86400)
    k1 = tl.cabinet()
    tl.at(0, k1.online).at(60, k1.offline).run(until=2 * 86400 + 12 * 3600)
    digests = [s for s in tl.sent if s.notification.kind == "digest"]
    assert [(s.receiver, round(s.t / 3600, 2)) for s in digests] == [
        ("school:gs-park", 24 + 6.25), ("school:gs-park", 48 + 6.25)]
    assert digests[0].notification.subject == (
        "[Ladewache] Tagesübersicht GS am Park, 09.11.2026: 1 offene(r) Alarm(e)")


@pytest.mark.parametrize("field", ["group_wait", "group_interval", "repeat_interval"])
def test_zero_timing_is_refused(field: str) -> None:
    values = {"group_wait": timedelta(seconds=1), "group_interval": timedelta(seconds=1),
              "repeat_interval": timedelta(seconds=1), field: timedelta(0)}
    with pytest.raises(ValueError, match=field):
        GroupTiming(**values)
