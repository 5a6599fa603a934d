"""The real ASGI app served by uvicorn on a free loopback port, in a thread, for browser tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.support.procs import wait_until

__all__ = ["served_app"]


@contextmanager
def served_app(app: Any, name: str = "uvicorn") -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 20, "uvicorn started")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
