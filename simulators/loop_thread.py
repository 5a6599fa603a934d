"""An asyncio loop in a daemon thread, and calling into a loop from other threads.

For callers without a loop of their own (synchronous tests, the control API's HTTP threads) that
need to start or poke servers that live on a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["LoopThread", "on_loop"]

T = TypeVar("T")

CALL_TIMEOUT_S = 10.0


def on_loop(loop: asyncio.AbstractEventLoop | None, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on ``loop``'s thread and return its result (directly when already there)."""
    if loop is None:
        raise RuntimeError("the server has not been started")
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return fn(*args)

    async def call() -> T:
        return fn(*args)

    return asyncio.run_coroutine_threadsafe(call(), loop).result(CALL_TIMEOUT_S)


class LoopThread:
    """``with LoopThread() as lt: server = lt.run(start_server())`` – the loop stops on exit."""

    def __init__(self, name: str = "sim-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Let cancelled tasks and closed transports finish before the loop closes.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def start(self) -> LoopThread:
        self._thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return on_loop(self.loop, fn, *args)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(CALL_TIMEOUT_S)

    def __enter__(self) -> LoopThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
