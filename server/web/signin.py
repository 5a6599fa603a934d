"""A page's first step: the logged-in user, or a redirect to the login that comes back here."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from ..auth import COOKIE, Auth, Principal
from ..auth.redirects import local_path

__all__ = ["user_or_login"]


def user_or_login(auth: Auth, request: Request) -> Principal | Response:
    """The request's user; without one, a redirect to ``/login?next=`` this page (with
    ``error=session_expired`` when a session cookie came along but no longer counts)."""
    who = auth.principal(request)
    if who is None:
        target = local_path(request.url.path + (f"?{request.url.query}" if request.url.query
                                                else ""))
        expired = "&error=session_expired" if request.cookies.get(COOKIE) else ""
        return RedirectResponse(f"/login?next={quote(target)}{expired}", 303)
    return who
