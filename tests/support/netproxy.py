"""A TCP proxy between an agent and the broker that a test can cut and restore.

``cut()`` black-holes the link like a pulled network cable: open connections stay open but no byte
passes either way (the peers find out by their keepalive), and new connections are accepted and
starved too. ``cut(reset=True)`` closes every connection at once instead, like a router that
answers with RST. ``cut_client_side()`` closes only the client's end: the client knows at once,
the target by its keepalive. ``restore()`` lets bytes pass again for new connections; connections that were
black-holed are closed, as their TCP state would be long dead after a real outage.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable
from types import TracebackType

__all__ = ["NetProxy"]

_BUFFER = 64 * 1024


Tap = Callable[[bytes], None]


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket, tap: Tap | None) -> None:
        self.client = client
        self.upstream = upstream
        self.starved = False  # cut while open: never forwards again
        self.tap = tap  # sees every byte the client sent that went on to the target

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.close()


class NetProxy:
    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1",
                 tap: Callable[[], Tap] | None = None) -> None:
        """``tap``: called once per connection for a function that is given, in order, every
        byte of that connection's client that went on to the target (``mqtt_tap.PublishTap``)."""
        self._target = (target_host, target_port)
        self._tap = tap
        self._listener = socket.create_server((listen_host, 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._pairs: dict[socket.socket, _Pair] = {}
        self._lock = threading.Lock()
        self._cut = False
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._calls: list[Callable[[], None]] = []  # run in the proxy thread, which owns the sockets
        self._thread = threading.Thread(target=self._run, name="netproxy", daemon=True)
        self.connections = 0
        self._orphans: list[socket.socket] = []  # upstream ends left open by cut_client_side

    def __enter__(self) -> NetProxy:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- control (test thread) ----------------------------------------------------------------
    def cut(self, reset: bool = False) -> None:
        with self._lock:
            self._cut = True
            for pair in set(self._pairs.values()):
                pair.starved = True
        if reset:
            self._call(self._close_all)

    def cut_client_side(self) -> None:
        """The client's end breaks (its network interface went down, its router answered with
        RST): the client learns it at once, the target sees nothing and finds out only by its
        keepalive, as with a half-open connection."""
        with self._lock:
            self._cut = True
            for pair in set(self._pairs.values()):
                pair.starved = True
        self._call(self._close_clients)

    def restore(self) -> None:
        with self._lock:
            self._cut = False
        self._call(self._close_starved)

    @property
    def is_cut(self) -> bool:
        with self._lock:
            return self._cut

    def close(self) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join(5)
        self._close_all()
        for sock in self._orphans:
            with contextlib.suppress(OSError):
                sock.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the proxy thread -------------------------------------------------------------------------
    def _call(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._calls.append(fn)
        self._wake_w.send(b"x")

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.5):
                if key.data == "wake":
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                    with self._lock:
                        calls, self._calls = self._calls, []
                    for fn in calls:
                        fn()
                elif key.fileobj is self._listener:
                    self._accept()
                else:
                    self._forward(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection(self._target, timeout=2)
        except OSError:
            client.close()
            return
        self.connections += 1
        pair = _Pair(client, upstream, self._tap() if self._tap is not None else None)
        with self._lock:
            pair.starved = self._cut
        for sock in (client, upstream):
            sock.setblocking(False)
            self._pairs[sock] = pair
            self._selector.register(sock, selectors.EVENT_READ, None)

    def _forward(self, sock: socket.socket) -> None:
        pair = self._pairs.get(sock)
        if pair is None:
            return
        try:
            data = sock.recv(_BUFFER)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(pair)
            return
        if pair.starved:
            return  # the cable is out: bytes vanish
        other = pair.upstream if sock is pair.client else pair.client
        try:
            other.setblocking(True)
            other.sendall(data)
            other.setblocking(False)
        except OSError:
            self._drop(pair)
            return
        if pair.tap is not None and sock is pair.client:
            pair.tap(data)

    def _drop(self, pair: _Pair) -> None:
        for sock in (pair.client, pair.upstream):
            if self._pairs.pop(sock, None) is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)
        pair.close()

    def _close_clients(self) -> None:
        for pair in set(self._pairs.values()):
            for sock in (pair.client, pair.upstream):
                if self._pairs.pop(sock, None) is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        self._selector.unregister(sock)
            with contextlib.suppress(OSError):
                pair.client.close()
            self._orphans.append(pair.upstream)  # open, silent: closed with the proxy

    def _close_all(self) -> None:
        for pair in set(self._pairs.values()):
            self._drop(pair)

    def _close_starved(self) -> None:
        for pair in {p for p in self._pairs.values() if p.starved}:
            self._drop(pair)
