"""Delivery in the real collector wiring (``Collector.notify_once`` → outbox → ``Sender``) against
real receivers: a receiver that hangs holds up no other, a failed delivery is retried from the
SQLite outbox after a restart and arrives exactly once, and no webhook token reaches the logs.

A fake clock drives judging and back-off; waits are on the receivers' events, each bounded.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from server.alerts.model import Alert
from server.alerts.state import StoredState
from server.app import Collector
from server.config import load_server_settings
from server.notify.webhook import ID_HEADER
from tests.support.http_receiver import http_receiver
from tests.support.store import store_at

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 17, 21, 0, tzinfo=UTC)  # a Tuesday night
GROUP_WAIT = timedelta(seconds=30)
BACKOFF = timedelta(seconds=60)
TOKEN_URL = "https://hooks.example/services/T000/B000/SECRETTOKEN?token=abc"
SECRETS = ("SECRETTOKEN", "token=abc", "T000", "B000")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Stalled:
    """Accepts connections and never answers."""

    url: str
    accepted: threading.Event = field(default_factory=threading.Event)
    connections: list[socket.socket] = field(default_factory=list)

    def hang_up(self) -> None:
        for conn in self.connections:
            conn.close()


@contextmanager
def stalled_receiver() -> Iterator[Stalled]:
    server = socket.create_server(("127.0.0.1", 0))
    stalled = Stalled(f"http://127.0.0.1:{server.getsockname()[1]}")

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            stalled.connections.append(conn)
            stalled.accepted.set()

    thread = threading.Thread(target=accept, daemon=True, name="stalled-receiver")
    thread.start()
    try:
        yield stalled
    finally:
        stalled.hang_up()
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        server.close()
        thread.join(5)


@dataclass
class Proxy:
    url: str
    seen: list[str] = field(default_factory=list)  # the request lines: what left the process


@contextmanager
def refusing_proxy() -> Iterator[Proxy]:
    """An HTTPS proxy that refuses every CONNECT: an https:// webhook fails without a network."""
    proxy = Proxy("")

    class Handler(BaseHTTPRequestHandler):
        def do_CONNECT(self) -> None:
            proxy.seen.append(self.requestline)
            self.send_error(502)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="proxy")
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _config(tmp_path: Path, *, webhooks: Sequence[str] = (), apprise: Sequence[str] = (),
            state: bool = False) -> Path:
    hooks = ", ".join(f'{{ url = "{url}" }}' for url in webhooks)
    chats = ", ".join(f'"{url}"' for url in apprise)
    state_dir = f'[state]\ndir = "{tmp_path / "state"}"\n' if state else ""
    config = tmp_path / "server.toml"
    config.write_text(f"""
[http]
auth = false
{state_dir}
[notify]
group_wait_s = {GROUP_WAIT.total_seconds()}
group_interval_s = 300
repeat_interval_s = 86400
blind_after_s = 0  # these collectors never connect to a broker: not a blind spell to tell of
[notify.delivery]
timeout_s = 30
attempts = 3
backoff_initial_s = {BACKOFF.total_seconds()}
backoff_max_s = 600
[notify.webhook]
timeout_s = 60
[organisation]
district_team = "it"
[[organisation.teams]]
id = "it"
name = "Schul-IT"
[organisation.teams.contacts]
webhooks = [{hooks}]
apprise = [{chats}]
[[organisation.municipalities]]
id = "m"
name = "Musterdorf"
[[organisation.schools]]
site = "gs-park"
name = "GS am Park"
municipality = "m"
[[organisation.cabinets]]
school = "gs-park"
id = "k1"
name = "Raum 12"
""", encoding="utf-8")
    return config


def _alert(name: str = "door_open") -> Alert:
    labels = {"alertname": name, "severity": "warning", "site": "gs-park", "cabinet": "k1"}
    return Alert(labels, {}, NOW - timedelta(minutes=10), NOW - timedelta(minutes=10))


def test_a_receiver_that_hangs_delays_no_other(tmp_path: Path) -> None:
    with stalled_receiver() as dead, http_receiver() as healthy:
        # webhook-0 hangs, webhook-1 answers: the dead one comes first.
        config = _config(tmp_path, webhooks=[dead.url + "/hook", healthy.url + "/hook"])
        clock = Clock()
        collector = Collector(load_server_settings(config), clock=clock)
        collector.state.put_active(_alert())

        async def scenario() -> None:
            await collector.notify_once()  # the group is made and waits group_wait
            clock.now += GROUP_WAIT
            notify = asyncio.create_task(collector.notify_once())
            # Bounded waits on events; the dead receiver's timeout is 30 s (its HTTP one 60 s).
            assert await asyncio.to_thread(healthy.wait_for, 1, 10), "healthy receiver waited"
            assert await asyncio.to_thread(dead.accepted.wait, 10), "the dead one was not tried"
            # The healthy one arrived while the dead one's try was under way, not timed out:
            assert collector.sender.stats.timed_out == 0 and collector.sender.stats.failed == 0
            assert len(await notify) == 2
            dead.hang_up()  # ends the dead try now (a retryable error) instead of in 30 s
            assert await collector.sender.drain(10)

        try:
            asyncio.run(scenario())
            stats = collector.sender.stats
            assert (stats.delivered, stats.failed, stats.timed_out) == (1, 1, 0)
            key = "team:it/gs-park/k1"
            assert collector.state.log_entry(f"{key}/webhook-1") is not None
            assert collector.state.log_entry(f"{key}/webhook-0") is None
            (waiting,) = collector.state.outgoing()
            assert (waiting.log_key, waiting.attempts) == (f"{key}/webhook-0", 1)
            assert waiting.next_at == NOW + GROUP_WAIT + BACKOFF
        finally:
            collector.close()
    assert len(healthy.delivered()) == 1


@pytest.mark.parametrize("name", [
    "door_open",  # the restarted dispatcher's group still waits: the outbox retries
    # a safety alert is judged again at once: the same news, so the queued message stays (and its
    # delivery id: the receiver can tell the retry from news)
    "cabinet_offline",
])
def test_a_failed_delivery_is_retried_from_the_outbox_after_a_restart_exactly_once(
        tmp_path: Path, name: str) -> None:
    with http_receiver([500]) as receiver:
        settings = load_server_settings(_config(tmp_path, webhooks=[receiver.url + "/hook"],
                                                state=True))
        clock = Clock()
        first = Collector(settings, clock=clock)
        first.state.put_active(_alert(name))

        async def before_the_restart() -> None:
            for _ in range(2):  # a safety alert flushes at once, the other after group_wait
                await first.notify_once()
                assert await first.sender.drain(10)
                clock.now += GROUP_WAIT

        asyncio.run(before_the_restart())
        assert [r.status for r in receiver.requests] == [500]
        (queued,) = first.state.outgoing()
        assert queued.attempts == 1 and "HTTP 500" in queued.error
        judged_at = queued.entry.sent_at
        first.close()  # the collector stops; the queue is in the store

        clock.now = queued.next_at
        second = Collector(settings, clock=clock)

        async def after_the_restart() -> None:
            for _ in range(70):  # every 10 s for more than two group intervals
                await second.notify_once()
                assert await second.sender.drain(10)
                clock.now += timedelta(seconds=10)

        try:
            asyncio.run(after_the_restart())
        finally:
            second.close()
    assert [r.status for r in receiver.requests] == [500, 200]
    (delivered,) = receiver.delivered()
    payload = delivered.json()
    assert [a["labels"]["alertname"] for a in payload["alerts"]] == [name]
    told_at = datetime.fromisoformat(payload["sent_at"])
    assert told_at == judged_at  # the queued text, judged again or not
    first_try, retry = receiver.requests
    assert first_try.headers[ID_HEADER] == retry.headers[ID_HEADER]
    state = StoredState(store_at(tmp_path / "state"), cache=False)  # what the collector left
    assert state.outgoing() == []
    assert state.log_entry("team:it/gs-park/k1/webhook-0") is not None


@pytest.mark.parametrize("kind", ["https-webhook", "http-webhook", "apprise"])
def test_no_token_from_a_receiver_url_reaches_the_logs(
        tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture,
        request: pytest.FixtureRequest) -> None:
    caplog.set_level(logging.DEBUG)
    with refusing_proxy() as proxy, http_receiver([500] * 5) as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        if kind == "https-webhook":  # the URL as given; it fails at the proxy, offline
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({"https": proxy.url}))
            urllib.request.install_opener(opener)
            request.addfinalizer(lambda: urllib.request.install_opener(None))  # type: ignore[arg-type]
            config = _config(tmp_path, webhooks=[TOKEN_URL])
            shown = "https://hooks.example/…"
        elif kind == "http-webhook":  # the same path and query, answered with a 500
            config = _config(tmp_path, webhooks=[f"{receiver.url}/services/T000/B000/"
                                                 "SECRETTOKEN?token=abc"])
            shown = f"{receiver.url}/…"
        else:
            config = _config(tmp_path, apprise=[f"json://127.0.0.1:{port}/services/T000/B000/"
                                                "SECRETTOKEN?token=abc"])
            shown = "json://…"
        clock = Clock()
        collector = Collector(load_server_settings(config), clock=clock)
        collector.state.put_active(_alert("cabinet_offline"))  # a safety alert: sent at once

        async def fail_once() -> None:
            await collector.notify_once()
            assert await collector.sender.drain(10)

        try:
            asyncio.run(fail_once())
            (queued,) = collector.state.outgoing()
        finally:
            collector.close()
    assert collector.sender.stats.failed == 1
    if kind == "https-webhook":
        (line,) = proxy.seen
        assert line.startswith("CONNECT hooks.example:443 HTTP/")  # nothing more left
    else:
        assert len(receiver.requests) == 1  # it was tried: the logs had a chance to leak
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "try 1 of 3 failed" in logged
    if kind != "apprise":
        assert shown in logged and shown in queued.error
    for secret in SECRETS:
        assert secret not in logged, secret
        assert secret not in queued.error, secret
