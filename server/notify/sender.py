"""Delivery: every notification goes through the outbox; receivers are tried side by side, each
try bounded by a timeout, failures tried again with back-off.

Who owns what: the notify task (the collector's asyncio loop) owns the ``Sender``. It judges what
is due (``Dispatcher``, pure), ``submit``s it to the outbox (``server.alerts.store.Outbox``: in the
alert state's SQLite file when there is one, so it survives a restart) and calls ``pump``, which
starts one task per queued notification that is due and not being tried. A task runs the
notifier's blocking ``send`` in the notify thread pool and waits for it at most ``timeout_s``:
one receiver that hangs or fails costs its own task only, never another receiver's message.

A try that fails retryably is tried again after ``backoff_initial_s`` doubling up to
``backoff_max_s``; after ``attempts`` tries, or at once for a permanent error, it is given up:
logged, counted, and the group's next flush tells its news again. A delivery writes its log entry
and leaves the outbox in one transaction, so what arrived is not sent again, not even after a
restart. (A crash between the receiver's answer and that commit sends it once more: at least
once, like every queue that cannot share a transaction with its receiver.)

A try that times out keeps its key busy until its thread ends (the notifier's own I/O timeout):
no second try overlaps it, and should it succeed after all, that counts as delivered. At most
``per_receiver`` tries run at one receiver at a time, so a receiver that hangs holds few threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from server.alerts.store import Outbox, Outgoing
from server.redact import redact_text

from .base import Notification, Notifier, NotifyError
from .dispatch import Delivery, Dispatcher
from .settings import DeliverySettings

__all__ = ["SendStats", "Sender", "decode", "delivery_id", "encode"]

log = logging.getLogger(__name__)

WORKERS: Final = 32  # threads for blocking sends; per_receiver keeps one receiver from taking all
_FORMAT: Final = 1


def encode(notification: Notification) -> str:
    return json.dumps({"format": _FORMAT, "kind": notification.kind, "key": notification.key,
                       "subject": notification.subject, "body": notification.body,
                       "payload": notification.payload}, sort_keys=True, ensure_ascii=False)


def decode(message: str) -> Notification:
    data = json.loads(message)
    return Notification(data["kind"], data["key"], data["subject"], data["body"], data["payload"])


def delivery_id(item: Outgoing) -> str:
    """The id of one queued message, the same for each of its tries, by whichever collector."""
    text = f"{item.log_key}\n{item.queued_at.isoformat()}\n{item.version}\n{item.message}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class SendStats:
    delivered: int = 0
    failed: int = 0  # tries that failed, timed out or not
    timed_out: int = 0
    late: int = 0  # delivered by a try that had timed out
    given_up: int = 0


class Sender:
    def __init__(self, *, outbox: Outbox, notifier: Callable[[str, str], Notifier | None],
                 settings: DeliverySettings, clock: Callable[[], datetime],
                 dispatcher: Dispatcher | None = None, workers: int = WORKERS) -> None:
        """``notifier(receiver_id, name)`` finds a queued notification's notifier (after a
        restart too); None drops it. ``dispatcher`` is told what was logged."""
        self._outbox = outbox
        self._notifier = notifier
        self._settings = settings
        self._clock = clock
        self._dispatcher = dispatcher
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify")
        self._busy: set[str] = set()  # log keys being tried (until the thread returns)
        self._slots: dict[tuple[str, str], asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = SendStats()

    def submit(self, deliveries: Iterable[Delivery]) -> int:
        """Queue what the dispatcher judged due; a newer message for a queued key replaces it."""
        now = self._clock()
        count = 0
        for d in deliveries:
            self._outbox.enqueue(Outgoing(d.log_key, d.receiver, d.notifier.name,
                                          encode(d.notification), d.entry, now, now))
            count += 1
        return count

    def pump(self) -> list[asyncio.Task[None]]:
        """Start a try for every queued notification that is due and not being tried."""
        started = []
        for item in self._outbox.outgoing(due_by=self._clock()):
            if item.log_key in self._busy:
                continue
            self._busy.add(item.log_key)
            task = asyncio.create_task(self._try(item), name=f"notify {item.log_key}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait for the tries under way; False if some were still running after ``timeout``."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    def close(self) -> None:
        """Stop: what is queued stays queued (durably, with SQLite state) for the next start."""
        for task in self._tasks:
            task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _slot(self, item: Outgoing) -> asyncio.Semaphore:
        key = (item.receiver, item.notifier)
        if key not in self._slots:
            self._slots[key] = asyncio.Semaphore(self._settings.per_receiver)
        return self._slots[key]

    async def _try(self, item: Outgoing) -> None:
        try:
            notifier = self._notifier(item.receiver, item.notifier)
            try:
                notification = replace(decode(item.message), id=delivery_id(item))
            except (ValueError, KeyError, TypeError):
                notification = None
            if notifier is None or notification is None:
                self._outbox.give_up(item.log_key)
                self.stats.given_up += 1
                log.error("notify %s: dropped (%s)", item.log_key,
                          "unreadable message" if notifier else
                          f"receiver {item.receiver} has no notifier {item.notifier} any more")
                return
            async with self._slot(item):
                await self._send(item, notifier, notification)
        except Exception:  # top of a task: logged; the item stays queued and is tried again
            log.exception("notify %s: delivery failed", item.log_key)
        finally:
            self._busy.discard(item.log_key)

    async def _send(self, item: Outgoing, notifier: Notifier, notification: Notification) -> None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, notifier.send, notification)
        timeout = self._settings.timeout_s
        done, _ = await asyncio.wait({future}, timeout=timeout)
        if not done:
            self.stats.timed_out += 1
            self._failed(item, NotifyError(f"no answer within {timeout:g} s"))
            try:  # the thread runs on until its own I/O timeout; the key stays busy meanwhile
                await future
            except Exception:  # already counted as failed
                return
            self.stats.late += 1
            self._delivered(item, notification)
            return
        try:
            future.result()
        except NotifyError as exc:
            self._failed(item, exc)
            return
        except Exception as exc:  # a notifier's bug: retried like a network error, and said
            self._failed(item, NotifyError(f"{type(exc).__name__}: {exc}"))
            return
        self._delivered(item, notification)

    def _delivered(self, item: Outgoing, notification: Notification) -> None:
        current = self._outbox.delivered(item)
        self.stats.delivered += 1
        log.info("notify %s: sent %r", item.log_key, notification.subject)
        if self._dispatcher is not None:
            self._dispatcher.logged(item.log_key, notification)
            if not current:
                self._dispatcher.rejudge(notification.key)

    def _failed(self, item: Outgoing, exc: NotifyError) -> None:
        self.stats.failed += 1
        tries = item.attempts + 1
        error = redact_text(str(exc))
        if not exc.retryable or tries >= self._settings.attempts:
            self._outbox.give_up(item.log_key)
            self.stats.given_up += 1
            log.error("notify %s: given up after %d tr%s (%s): %s", item.log_key, tries,
                      "y" if tries == 1 else "ies", "retryable" if exc.retryable else "permanent",
                      error)
            return
        s = self._settings
        delay = min(s.backoff_initial_s * 2 ** (tries - 1), s.backoff_max_s)
        self._outbox.retry_later(item.log_key, tries, self._clock() + timedelta(seconds=delay),
                                 error)
        log.warning("notify %s: try %d of %d failed: %s; again in %g s", item.log_key, tries,
                    s.attempts, error, delay)
