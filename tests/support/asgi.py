"""The real ASGI app served by uvicorn on a free loopback port, in a thread, for browser tests;
or one GET of it in-process (no server, no socket), for page tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.procs import wait_until

__all__ = ["get_ok", "served_app"]


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


def get_ok(app: FastAPI, path: str, token: str | None = None) -> httpx.Response:
    """``path`` with ``token`` as the bearer (None: anonymous); it must answer 200."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers=headers) as client:
            return await client.get(path)
    response = asyncio.run(call())
    assert response.status_code == 200, (path, response.status_code)
    return response
