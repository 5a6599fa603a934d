"""A real HTTP receiver (stdlib http.server in a thread) that records POSTs and answers with the
status codes it is told, in order (then 200). Tests wait on ``wait_for`` (a condition), not sleeps."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    answers: list[int] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def delivered(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.status < 300]

    def wait_for(self, delivered: int, timeout: float) -> bool:
        """Whether ``delivered`` requests were answered with success within ``timeout`` s."""
        with self.arrived:
            return self.arrived.wait_for(
                lambda: sum(r.status < 300 for r in self.requests) >= delivered, timeout)


@contextmanager
def http_receiver(answers: list[int] | None = None, delay_s: float = 0.0) -> Iterator[Receiver]:
    """``delay_s``: each answer leaves this long after its request was recorded (a slow receiver:
    a sender killed meanwhile never learns that its message arrived)."""
    receiver = Receiver("", list(answers or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.requests.append(Request(self.path, dict(self.headers.items()), body,
                                                 status))
                receiver.arrived.notify_all()
            if delay_s:
                time.sleep(delay_s)  # the receiver's own slowness, not a wait for a condition
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="http-receiver")
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
