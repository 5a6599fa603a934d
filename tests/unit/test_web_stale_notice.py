"""Every page says when this collector receives nothing, so a technician does not trust a view
that stopped moving (a broker away, the collector's network cut, a follower cut off): after 30 s,
not at a reconnect's moment; in the page's language and local time; also in the part the live
refresh replaces, so it comes and goes without a reload. With several brokers, likewise for the
cabinets out of earshot while one connection is down, counted in the caller's view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from cabinet_agent.common.protocol import AgentStatus, StatusMessage
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import Auth, Role, User, UserStore
from server.brokers import Unheard
from server.fleet import Fleet
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from tests.support.asgi import get_ok

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # 09:00 in Berlin, a Wednesday
ORG = Organisation.model_validate({
    "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nordheim"}, {"id": "sued", "name": "Südheim"}],
    "schools": [{"site": "gs-park", "name": "Grundschule am Park", "municipality": "nord"}],
})
GERMAN = "Dieser Server empfängt seit Mi 08:55 nichts von den Schränken"
ENGLISH = "This server has received nothing from the cabinets since Wed 08:55"


class Link:
    """What the collector's MQTT side says: silent since ``silent_since`` (None: receiving)."""

    def __init__(self) -> None:
        self.silent_since: datetime | None = None
        self.unheard: list[Unheard] = []  # connections down, with their cabinets
        self.deaf: set[str] = set()  # ids of the cabinets out of earshot

    def deaf_now(self) -> object:
        return (lambda key: key[1] in self.deaf) if self.deaf else None

    def stats(self) -> MqttStats:
        return MqttStats(self.silent_since is None, 1, 0, None, self.silent_since)


@pytest.fixture
def link() -> Link:
    return Link()


@pytest.fixture
def app(link: Link) -> FastAPI:
    store = UserStore(open_store(None))
    store.add_user(User("admin", Role.ADMIN), "a-long-password", NOW)
    state = StoredState.in_memory()
    fleet = Fleet()
    for cabinet in ("k1", "k2"):
        fleet.apply(StatusMessage(v=1, site="gs-park", cabinet=cabinet, boot_id="b" * 32, seq=0, ts=NOW,
                                  clock_synced=True, status=AgentStatus.ONLINE), NOW)
    sources = ApiSources(fleet=fleet, alerts=state, state=state, clock=lambda: NOW, org=ORG,
                         ingest_stats=lambda **_: IngestStats(0, 0, {}), mqtt_stats=link.stats,
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(store, lambda: NOW),
                         unheard=lambda: link.unheard, deaf=link.deaf_now)  # type: ignore[arg-type]
    app = create_app(sources)
    install_dashboard(app, Dashboard(sources))
    app.state.token = store.create_token("admin", "t", NOW)
    store.add_user(User("sued-tech", Role.TECHNICIAN, municipality="sued"), "a-long-password", NOW)
    app.state.other_token = store.create_token("sued-tech", "t", NOW)
    return app


def _get(app: FastAPI, path: str, logged_in: bool = True) -> str:
    return get_ok(app, path, app.state.token if logged_in else None).text


PAGES = ["/", "/?partial=1", "/schools/gs-park", "/alerts", "/missing", "/inventory"]


@pytest.mark.parametrize("path", PAGES)
def test_a_collector_that_receives_says_nothing(app: FastAPI, link: Link, path: str) -> None:
    assert "Dieser Server empfängt" not in _get(app, path)
    link.silent_since = NOW - timedelta(seconds=29)  # a reconnect under way: no notice yet
    assert "Dieser Server empfängt" not in _get(app, path)


@pytest.mark.parametrize("path", PAGES)
def test_a_silent_collector_says_since_when_on_every_page(app: FastAPI, link: Link,
                                                          path: str) -> None:
    link.silent_since = NOW - timedelta(minutes=5)
    page = _get(app, path)
    assert page.count(GERMAN) == 1, page  # once: above the page, or in its live part
    english = _get(app, path + ("&" if "?" in path else "?") + "lang=en")
    assert english.count(ENGLISH) == 1


def test_the_live_refresh_carries_it_so_it_goes_without_a_reload(app: FastAPI,
                                                                 link: Link) -> None:
    link.silent_since = NOW - timedelta(minutes=5)
    assert GERMAN in _get(app, "/?partial=1")
    link.silent_since = None  # the broker is back
    assert "Dieser Server empfängt" not in _get(app, "/?partial=1")


def test_the_login_page_tells_no_stranger(app: FastAPI, link: Link) -> None:
    link.silent_since = NOW - timedelta(minutes=5)
    assert "Dieser Server empfängt" not in _get(app, "/login", logged_in=False)


def test_metrics_say_how_long_it_has_heard_nothing(app: FastAPI, link: Link) -> None:
    # for the district's monitoring (docs/deploy.md 6d): a threshold, not a flapping boolean
    assert "\nladewache_mqtt_silent_seconds 0\n" in _get(app, "/metrics", logged_in=False)
    link.silent_since = NOW - timedelta(minutes=5)
    assert "\nladewache_mqtt_silent_seconds 300\n" in _get(app, "/metrics", logged_in=False)


UNHEARD = "Keine Verbindung zum MQTT-Broker broker2.example:8883 seit Mi 08:55: 2 Schränke"


@pytest.mark.parametrize("path", PAGES)
def test_cabinets_out_of_earshot_are_named_on_every_page(app: FastAPI, link: Link,
                                                         path: str) -> None:
    cabinets = [("gs-park", "k1"), ("gs-park", "k2")]
    link.unheard = [Unheard("broker2.example:8883", NOW - timedelta(seconds=29), cabinets)]
    assert "Keine Verbindung zum MQTT-Broker" not in _get(app, path)  # not at a reconnect's moment
    link.unheard = [Unheard("broker2.example:8883", NOW - timedelta(minutes=5), cabinets)]
    page = _get(app, path)
    assert page.count(UNHEARD) == 1, page
    assert "Dieser Server empfängt" not in page  # it receives: only those cabinets are unheard
    english = _get(app, path + ("&" if "?" in path else "?") + "lang=en")
    assert "No connection to the MQTT broker broker2.example:8883 since Wed 08:55: 2 cabinets" \
        in english
    link.unheard = [Unheard("broker2.example:8883", NOW - timedelta(minutes=5), [])]
    assert "Keine Verbindung zum MQTT-Broker" not in _get(app, path)  # every cabinet moved


def test_a_technician_is_told_only_of_cabinets_of_their_own(app: FastAPI, link: Link) -> None:
    link.unheard = [Unheard("broker2.example:8883", NOW - timedelta(minutes=5), [("gs-park", "k1")])]
    assert "1 Schrank, zuletzt" in _get(app, "/")
    assert "Keine Verbindung zum MQTT-Broker" not in get_ok(app, "/", app.state.other_token).text


def test_metrics_count_the_cabinets_out_of_earshot(app: FastAPI, link: Link) -> None:
    assert "\nladewache_mqtt_unheard_cabinets 0\n" in _get(app, "/metrics", logged_in=False)
    link.unheard = [Unheard("b:1883", NOW, [("gs-park", "k1"), ("gs-park", "k2")])]
    assert "\nladewache_mqtt_unheard_cabinets 2\n" in _get(app, "/metrics", logged_in=False)


def test_a_cabinet_out_of_earshot_is_marked_on_its_school_and_its_own_page(app: FastAPI,
                                                                          link: Link) -> None:
    """It still shows "online" (its last known state): the mark says that state is not watched."""
    assert "nicht überwacht" not in _get(app, "/schools/gs-park")
    link.deaf = {"k1"}
    school = _get(app, "/schools/gs-park")
    assert school.count('class="badge unheard"') == 1
    assert school.index("/cabinets/gs-park/k1") < school.index("badge unheard") < \
        school.index("/cabinets/gs-park/k2")  # at k1, not at k2
    assert "Nicht überwacht: Dieser Schrank wurde zuletzt" in _get(app, "/cabinets/gs-park/k1")
    assert "Nicht überwacht" not in _get(app, "/cabinets/gs-park/k2")
    assert "Not monitored: this cabinet" in _get(app, "/cabinets/gs-park/k1?partial=1&lang=en")
