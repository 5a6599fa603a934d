"""The language switch in every page's header keeps the page's query (the overview's and the
missing list's filters, a login's ``next``) and replaces only ``lang``; a hostile query string
stays inside the link's attribute."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import Auth, Role, User, UserStore
from server.fleet import Fleet
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from tests.support.asgi import get_ok

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
ORG = Organisation.model_validate({
    "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nordheim"}],
    "schools": [{"site": "gs-park", "name": "Grundschule am Park", "municipality": "nord"}],
    "cabinets": [{"school": "gs-park", "id": "k1", "name": "Raum 12"}],
})
HOSTILE = "\"><script>alert(1)</script><a x='&amp;"


class _Switch(HTMLParser):
    """The header's ``<a class="lang">``: its href, as the browser reads it (entities decoded)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("class") == "lang":
            self.hrefs.append(found.get("href") or "")
        self.scripts += tag == "script" and found.get("src") is None


def _switch(html: str) -> tuple[str, list[tuple[str, str]], int]:
    parser = _Switch()
    parser.feed(html)
    assert len(parser.hrefs) == 1, parser.hrefs
    (href,) = parser.hrefs
    parts = urlsplit(href)
    assert (parts.scheme, parts.netloc, parts.path) == ("", "", ""), href  # this page, other query
    return href, parse_qsl(parts.query, keep_blank_values=True), parser.scripts


@pytest.fixture(scope="module")
def app() -> FastAPI:
    store = UserStore(open_store(None))
    store.add_user(User("admin", Role.ADMIN), "a-long-password", NOW)
    state = StoredState.in_memory()
    sources = ApiSources(fleet=Fleet(), alerts=state, state=state, clock=lambda: NOW, org=ORG,
                         ingest_stats=lambda **_: IngestStats(0, 0, {}),
                         mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK),
                         auth=Auth(store, lambda: NOW))
    app = create_app(sources)
    install_dashboard(app, Dashboard(sources))
    app.state.token = store.create_token("admin", "t", NOW)
    return app


def _get(app: FastAPI, path: str, logged_in: bool = True) -> httpx.Response:
    return get_ok(app, path, app.state.token if logged_in else None)


@pytest.mark.parametrize(("path", "kept"), [
    ("/?municipality=nord&school=gs-park", [("municipality", "nord"), ("school", "gs-park")]),
    ("/?municipality=nord&lang=de&school=gs-park&page=1",
     [("municipality", "nord"), ("school", "gs-park"), ("page", "1")]),
    ("/missing?school=gs-park", [("school", "gs-park")]),
    ("/missing?municipality=nord&print=1", [("municipality", "nord"), ("print", "1")]),
    ("/alerts?all=true", [("all", "true")]),
    ("/search?q=Grundschule%20am%20Park", [("q", "Grundschule am Park")]),
    ("/", []),
])
def test_the_switch_keeps_the_filters_and_replaces_only_lang(app: FastAPI, path: str,
                                                            kept: list[tuple[str, str]]) -> None:
    german = _get(app, path)
    assert '<html lang="de">' in german.text
    href, query, _ = _switch(german.text)
    assert query == [*kept, ("lang", "en")], href
    english = _get(app, path + ("&" if "?" in path else "?") + "lang=en")
    assert '<html lang="en">' in english.text
    assert _switch(english.text)[1] == [*kept, ("lang", "de")]
    # followed, the link shows the same selection in the other language
    assert '<html lang="en">' in _get(app, (urlsplit(path).path or "/") + href).text


def test_the_login_page_keeps_where_to_go_next(app: FastAPI) -> None:
    page = _get(app, "/login?next=/missing%3Fschool%3Dgs-park&error=session_expired",
                logged_in=False)
    assert _switch(page.text)[1] == [("next", "/missing?school=gs-park"),
                                     ("error", "session_expired"), ("lang", "en")]


def test_every_lang_is_replaced_not_repeated(app: FastAPI) -> None:
    page = _get(app, "/?lang=xx&school=gs-park&lang=en")  # the last one counts: English
    assert '<html lang="en">' in page.text
    assert _switch(page.text)[1] == [("school", "gs-park"), ("lang", "de")]


@pytest.mark.parametrize("path", [
    "/?school=" + HOSTILE.replace("&", "%26") + "&municipality=nord",
    "/missing?x=" + HOSTILE.replace("&", "%26").replace("#", "%23"),
    "/?%22%3E%3Cscript%3E=1",  # in a parameter's name
])
def test_a_hostile_query_stays_inside_the_attribute(app: FastAPI, path: str) -> None:
    page = _get(app, path)
    href, query, scripts = _switch(page.text)
    assert scripts == 0  # no <script> of the query's own
    assert "<script>alert(1)" not in page.text and "alert(1)</script>" not in page.text
    assert not any(c in href for c in "\"'<> "), href  # percent-encoded, whatever it held
    assert query[-1] == ("lang", "en") and len(query) >= 2
    assert HOSTILE in [v for _, v in query] or '"><script>' in [k for k, _ in query]
