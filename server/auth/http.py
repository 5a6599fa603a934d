"""Authentication at the HTTP boundary: who is asking (API token or session cookie), CSRF checks.

API tokens come as ``Authorization: Bearer lw_…`` and need no CSRF token (a browser never sends
them by itself). A session cookie does come by itself, so every state-changing request made with
one must carry the session's CSRF token, as the ``X-CSRF-Token`` header (JavaScript, JSON API) or
the ``csrf`` form field (HTML forms).

A password check costs ~50 ms of CPU and 16 MiB (scrypt): it runs in a small pool of its own
(``HASH_THREADS``), never on the event loop, and at most ``max_pending`` logins wait for it; more
are refused at once (``LoginRefused(busy=True)``) instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from fastapi import HTTPException, Request

from ..clock import Clock, utcnow
from ..store import open_store
from .limiter import LoginLimiter, address_key
from .model import Principal, Role, User
from .store import UserStore

__all__ = ["COOKIE", "Auth", "LoginRefused"]

log = logging.getLogger(__name__)

COOKIE = "ladewache_session"
HASH_THREADS: Final = 2  # password checks at once: 2 × 16 MiB, and CPU left for ingest
MAX_PENDING: Final = 32  # logins waiting for a password check; more are refused (busy)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRefused(Exception):
    """Wrong name or password (``retry_after_s`` 0), too many failures (> 0), or too many logins
    at once (``busy``)."""

    def __init__(self, retry_after_s: float = 0.0, busy: bool = False) -> None:
        super().__init__("login refused")
        self.retry_after_s = retry_after_s
        self.busy = busy


@dataclass
class Auth:
    """``enabled = False`` ([http] auth = false) makes everyone a district admin: demos only."""

    store: UserStore = field(default_factory=lambda: UserStore(open_store(None)))  # nobody in it
    clock: Clock = utcnow
    enabled: bool = True
    session_lifetime: timedelta = timedelta(hours=12)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    max_pending: int = MAX_PENDING
    # Threads of their own (not the request threads, not the loop): password checks.
    _hashing: ThreadPoolExecutor = field(init=False, repr=False, default_factory=lambda: (
        ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="password-check")))
    _pending: threading.BoundedSemaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pending = threading.BoundedSemaphore(self.max_pending)

    def principal(self, request: Request) -> Principal | None:
        if not self.enabled:
            return Principal(User("anonymous", Role.ADMIN), "disabled")
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            user = self.store.user_for_token(header[7:].strip())
            return Principal(user, "token") if user is not None else None
        session_id = request.cookies.get(COOKIE)
        if session_id:
            record = self.store.session(session_id, self.clock())
            if record is not None:
                return Principal(record.user, "session", record.csrf)
        return None

    def require(self, request: Request) -> Principal:
        """For the JSON API: 401 without credentials, 403 on a missing CSRF token."""
        who = self.principal(request)
        if who is None:
            # Whoever follows an API link from the README lands here: say where a token comes from.
            raise HTTPException(401, "authentication required: log in or send "
                                     "'Authorization: Bearer <API token>'; an admin creates one "
                                     "with 'cabinet-server user token NAME' (see /docs)",
                                headers={"WWW-Authenticate": "Bearer"})
        if request.method not in _SAFE:
            self.check_csrf(who, request.headers.get("x-csrf-token"))
        return who

    @staticmethod
    def check_csrf(who: Principal, sent: str | None) -> None:
        if who.via != "session":
            return
        if not sent or who.csrf is None or not hmac.compare_digest(sent, who.csrf):
            raise HTTPException(403, "missing or wrong CSRF token")

    async def login(self, name: str, password: str, client: str | None) -> tuple[str, str]:
        """Check the password off the event loop, rate-limited per (name, client address) and per
        client address (``LoginLimiter``); returns (session id, CSRF token) or raises
        LoginRefused. ``client`` is the peer address the server saw (``request.client.host``)."""
        address, shown = address_key(client), name[:100]
        wait = self.limiter.acquire(name, address)
        if wait > 0:
            log.warning("login for %r from %s refused: too many failures", shown, address)
            raise LoginRefused(wait)
        if not self._pending.acquire(blocking=False):
            self.limiter.cancel(name, address)  # not tried: no failure, and none forgotten
            log.warning("login for %r from %s refused: %d logins waiting", shown, address,
                        self.max_pending)
            raise LoginRefused(1.0, busy=True)
        try:
            user = await asyncio.get_running_loop().run_in_executor(
                self._hashing, self.store.check_password, name, password)
        finally:
            self._pending.release()
        if user is None:
            failures = self.limiter.failed(name)
            log.warning("failed login for %r from %s (%d failures for this name from all "
                        "addresses in the window)", shown, address, failures)
            raise LoginRefused()
        self.limiter.succeeded(name, address)
        log.info("login: %s (%s) from %s", user.name, user.role.value, address)
        return self.store.create_session(user.name, self.clock(), self.session_lifetime)

    def logout(self, request: Request) -> None:
        session_id = request.cookies.get(COOKIE)
        if session_id:
            self.store.end_session(session_id)
