"""The API usable offline (issue 16): /docs from files the server ships, and an API token from the
CLI that the API accepts until it is revoked."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.apidocs import API_TOKEN, ASSETS
from server.app import make_auth
from server.auth import Auth, Role, User, UserStore
from server.cli import main
from server.config import load_server_settings
from server.fleet import Fleet
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from tests.support.store import store_at

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def _app(auth: Auth, dashboard: bool = True) -> FastAPI:
    state = StoredState.in_memory()
    sources = ApiSources(
        fleet=Fleet(), alerts=state, clock=lambda: NOW, state=state, org=Organisation(),
        ingest_stats=lambda **_: IngestStats(0, 0, {}),
        mqtt_stats=lambda: MqttStats(True, 0, 0, None),
        tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=auth)
    app = create_app(sources)
    if dashboard:  # as the server runs it: the pages must not take /docs
        install_dashboard(app, Dashboard(sources))
    return app


def _get(app: FastAPI, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://collector.school.example") as client:
            return await client.get(path, headers=headers)
    return asyncio.run(call())


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href", "data-openapi-url") and v]


@pytest.fixture
def docs_app() -> FastAPI:
    return _app(Auth(UserStore(open_store(None)), lambda: NOW))  # nobody can log in: /docs must work anyway


def test_docs_reference_only_files_this_server_serves(docs_app: FastAPI) -> None:
    page = _get(docs_app, "/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://|//[a-z0-9]", page.text, re.IGNORECASE), page.text
    parser = _References()
    parser.feed(page.text)
    assets = [u for u in parser.urls if u != "/openapi.json"]
    assert "/openapi.json" in parser.urls
    assert {u.rsplit("/", 1)[1] for u in assets} == {
        "swagger-ui-bundle.js", "ladewache-docs.js", "swagger-ui.css", "favicon-32x32.png"}
    for url in assets:
        assert url.startswith("/docs/assets/"), url
        answer = _get(docs_app, url)
        assert answer.status_code == 200, url
        assert answer.headers["content-type"].startswith(CONTENT_TYPES[Path(url).suffix]), url
        assert answer.content == (ASSETS / Path(url).name).read_bytes()


def test_the_docs_page_forbids_other_hosts_and_the_online_validator(docs_app: FastAPI) -> None:
    csp = _get(docs_app, "/docs").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script: the start-up is a file
    assert directives["connect-src"] == "'self'"
    # Swagger UI's default validatorUrl sends the schema's address to validator.swagger.io.
    assert "validatorUrl: null" in (ASSETS / "ladewache-docs.js").read_text(encoding="utf-8")


def test_docs_and_schema_are_public_the_api_is_not(docs_app: FastAPI) -> None:
    """The decision in server/apidocs and docs/dashboard.md: the description holds no data."""
    assert _get(docs_app, "/openapi.json").status_code == 200
    assert _get(docs_app, "/docs").status_code == 200
    assert _get(docs_app, "/redoc").status_code == 404  # ReDoc would load from a CDN: not offered
    refused = _get(docs_app, "/api/fleet")
    assert refused.status_code == 401
    assert "cabinet-server user token" in refused.json()["detail"]


def _call(app: FastAPI, method: str, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://collector.school.example") as client:
            if method == "get":
                return await client.get(path, headers=headers)
            return await client.request(method.upper(), path, headers=headers, json={})
    return asyncio.run(call())


def test_the_schema_declares_the_api_token_for_the_authorize_button(docs_app: FastAPI) -> None:
    """Swagger UI shows "Authorize" for a security scheme; a protected operation lists it, the
    public ones do not, and the pages that are no API (/docs, /login) are not in the schema."""
    schema = _get(docs_app, "/openapi.json").json()
    scheme = schema["components"]["securitySchemes"][API_TOKEN]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "cabinet-server user token" in scheme["description"]
    paths = schema["paths"]
    assert paths["/api/fleet"]["get"]["security"] == [{API_TOKEN: []}]
    assert paths["/api/export/inventory.csv"]["get"]["security"] == [{API_TOKEN: []}]
    assert paths["/api/silences"]["post"]["security"] == [{API_TOKEN: []}]
    for public in ("/healthz", "/metrics"):
        assert "security" not in paths[public]["get"], public
    assert "security" not in schema  # no default for every operation: each says its own
    for page in ("/docs", "/openapi.json", "/login", "/", "/missing"):
        assert page not in paths, page
    assert docs_app.openapi() is docs_app.openapi()  # built once, as FastAPI does


def test_the_scheme_is_listed_exactly_where_a_login_is_needed() -> None:
    """Every operation in the schema, called without credentials: 401 (as before, with its
    Bearer challenge) exactly where the schema lists the token, and the token gets past it."""
    store = UserStore(open_store(None))
    store.add_user(User("chefin", Role.ADMIN), "a-long-password", NOW)
    app = _app(Auth(store, lambda: NOW))
    token = store.create_token("chefin", "t", NOW)
    values = {"fingerprint": "f", "site": "gs", "cabinet": "k1", "slot": "1", "silence_id": "s"}
    operations = 0
    for template, methods in app.openapi()["paths"].items():
        path = template.format(**values)
        for method, operation in methods.items():
            operations += 1
            anonymous = _call(app, method, path)
            if "security" in operation:
                assert anonymous.status_code == 401, (method, template)
                assert anonymous.headers["www-authenticate"] == "Bearer"
                assert _call(app, method, path, token).status_code != 401, (method, template)
            else:
                assert anonymous.status_code == 200, (method, template)
    assert operations >= 19


def test_docs_without_the_dashboard() -> None:
    app = _app(Auth(UserStore(open_store(None)), lambda: NOW), dashboard=False)
    assert _get(app, "/docs").status_code == 200
    assert _get(app, "/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_vendored_swagger_ui_is_unchanged_and_licensed() -> None:
    sums = (ASSETS / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    named = {}
    for line in sums:
        digest, name = line.split(maxsplit=1)
        named[name] = digest
    assert {"LICENSE", "NOTICE", "swagger-ui-bundle.js", "swagger-ui.css"} <= named.keys()
    for name, digest in named.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in (ASSETS / "LICENSE").read_text(encoding="utf-8")


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_token_from_the_cli_reads_the_fleet_until_revoked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "server.toml"
    config.write_text('[state]\ndir = "state"\n', encoding="utf-8")
    conf = ("--config", str(config))
    assert _cli(capsys, "user", "add", "chefin", "--role", "admin", *conf)[0] == 0
    code, out, err = _cli(capsys, "user", "token", "chefin", "--label", "nightly", *conf)
    assert code == 0
    token = out.strip()
    assert re.fullmatch(r"lw_[0-9a-f]+_\S+", token), out  # alone on stdout: TOKEN=$(…)
    token_id = token.split("_", 2)[1]
    assert f"cabinet-server user revoke {token_id}" in err
    code, out, _ = _cli(capsys, "user", "tokens", *conf)
    assert code == 0
    assert out.split("\t")[:3] == [token_id, "chefin", "nightly"]
    assert token.split("_", 2)[2] not in out  # the secret is never shown again

    # The server finds the users the CLI wrote: the same config, the same store in [state] dir.
    auth = make_auth(load_server_settings(config), lambda: NOW, store_at(tmp_path / "state"),
                     tmp_path / "state")
    app = _app(auth)
    fleet = _get(app, "/api/fleet", token)
    assert fleet.status_code == 200, fleet.text
    assert fleet.json()["cabinets"] == []
    assert _cli(capsys, "user", "revoke", token_id, *conf)[0] == 0
    assert _get(app, "/api/fleet", token).status_code == 401
    assert _cli(capsys, "user", "tokens", "chefin", *conf)[1] == ""
    assert _cli(capsys, "user", "tokens", "nobody", *conf)[0] == 2


def test_a_token_for_an_unknown_user_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "server.toml"
    config.write_text('[state]\ndir = "state"\n', encoding="utf-8")
    code, out, err = _cli(capsys, "user", "token", "nobody", "--config", str(config))
    assert (code, out) == (2, "")
    assert "no user 'nobody'" in err
