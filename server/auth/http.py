"""Authentication at the HTTP boundary: who is asking (API token or session cookie), CSRF checks.

API tokens come as ``Authorization: Bearer lw_…`` and need no CSRF token (a browser never sends
them by itself). A session cookie does come by itself, so every state-changing request made with
one must carry the session's CSRF token, as the ``X-CSRF-Token`` header (JavaScript, JSON API) or
the ``csrf`` form field (HTML forms).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import HTTPException, Request

from ..clock import Clock, utcnow
from .limiter import LoginLimiter
from .model import Principal, Role, User
from .store import UserStore

__all__ = ["COOKIE", "Auth", "LoginRefused"]

log = logging.getLogger(__name__)

COOKIE = "ladewache_session"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRefused(Exception):
    def __init__(self, retry_after_s: float = 0.0) -> None:
        super().__init__("login refused")
        self.retry_after_s = retry_after_s


@dataclass
class Auth:
    """``enabled = False`` ([http] auth = false) makes everyone a district admin: demos only."""

    store: UserStore = field(default_factory=lambda: UserStore(None))
    clock: Clock = utcnow
    enabled: bool = True
    session_lifetime: timedelta = timedelta(hours=12)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)

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
            raise HTTPException(401, "authentication required: log in or send "
                                     "'Authorization: Bearer <API token>'",
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

    def login(self, name: str, password: str, client: str) -> tuple[str, str]:
        """Check the password, rate-limited per client address and per name; returns
        (session id, CSRF token) or raises LoginRefused."""
        keys = (f"ip:{client}", f"user:{name.lower()}")
        wait = self.limiter.retry_after(*keys)
        if wait > 0:
            log.warning("login for %r from %s refused: too many failures", name, client)
            raise LoginRefused(wait)
        user = self.store.check_password(name, password)
        if user is None:
            self.limiter.failed(*keys)
            log.warning("failed login for %r from %s", name, client)
            raise LoginRefused()
        self.limiter.succeeded(*keys)
        log.info("login: %s (%s)", user.name, user.role.value)
        return self.store.create_session(user.name, self.clock(), self.session_lifetime)

    def logout(self, request: Request) -> None:
        session_id = request.cookies.get(COOKIE)
        if session_id:
            self.store.end_session(session_id)
