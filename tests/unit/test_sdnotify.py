from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cabinet_agent.common.sdnotify import SdNotifier


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        yield sock, str(path)


def test_path_socket_gets_ready_status_and_stopping(sock_path: tuple[socket.socket, str]) -> None:
    sock, path = sock_path
    notifier = SdNotifier.from_env({"NOTIFY_SOCKET": path})
    assert notifier.enabled and notifier.watchdog_s is None
    assert notifier.ready("polling")
    assert sock.recv(4096) == b"READY=1\nSTATUS=polling"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    assert not notifier.watchdog()  # no WATCHDOG_USEC: no pings


def test_abstract_socket() -> None:
    name = f"ladewache-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        assert SdNotifier.from_env({"NOTIFY_SOCKET": f"@{name}"}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_watchdog_pings_at_most_every_quarter_period(sock_path: tuple[socket.socket, str]) -> None:
    sock, path = sock_path
    now = [100.0]
    notifier = SdNotifier(path, 2.0, monotonic=lambda: now[0])
    sent = []
    for t in (0.0, 0.1, 0.49, 0.5, 0.6, 1.0, 3.0):
        now[0] = 100.0 + t
        sent.append(notifier.watchdog())
    assert sent == [True, False, False, True, False, True, True]
    assert [sock.recv(64) for _ in range(4)] == [b"WATCHDOG=1"] * 4


@pytest.mark.parametrize("env", [
    {},
    {"NOTIFY_SOCKET": ""},
    {"NOTIFY_SOCKET": "vsock:2:1234"},
])
def test_without_a_usable_socket_everything_is_a_no_op(env: dict[str, str]) -> None:
    notifier = SdNotifier.from_env({**env, "WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.watchdog() and not notifier.stopping()


def test_watchdog_for_another_pid_is_ignored(sock_path: tuple[socket.socket, str]) -> None:
    _, path = sock_path
    other = SdNotifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000",
                                 "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_s is None
    mine = SdNotifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000",
                                "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_s == 1.0


def test_a_vanished_socket_warns_once_and_never_raises(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    notifier = SdNotifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING):
        assert not notifier.ready()
        assert not notifier.stopping()
    assert len([r for r in caplog.records if "sd_notify" in r.getMessage()]) == 1
