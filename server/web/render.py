"""Jinja2 templates (autoescaped) and the context every page gets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape

from ..auth import Principal
from ..formatting import DEFAULT_ZONE, date_time, number
from ..i18n import DEFAULT_LANGUAGE, Language, text
from .texts import pick_language, translator

__all__ = ["LANG_COOKIE", "language_of", "language_switch", "page"]

LANG_COOKIE = "ladewache_lang"
_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


@pass_context
def _when(context: Any, value: datetime | str | None) -> str:
    """A time on a page: local and in the page's language (the page's ``times`` when it has
    them, else the district's default zone); an ISO string is read first."""
    if value is None:
        return "–"
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    times = context.get("times")
    if times is not None:
        return str(times.short(moment))
    return date_time(moment, DEFAULT_ZONE, context.get("lang", DEFAULT_LANGUAGE))


_ENV.filters["when"] = _when
_ENV.filters["number"] = lambda n, lang: number(n, lang, digits=0)
_ENV.filters["decimal"] = lambda v, lang, digits=1: number(v, lang, digits=digits)


def language_of(request: Request) -> Language:
    return pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))


def language_switch(request: Request, lang: Language, page_at: str | None = None) -> str:
    """The link to this page in ``lang``: every query parameter kept (the overview's and the
    missing list's filters, a login's ``next``), in its order, only ``lang`` replaced. A relative
    ``?…`` URL, percent-encoded; the template escapes it once more for the attribute.

    A page that answers a form (a POST) is not at its URL: the link goes to ``page_at`` (a local
    path with its query, where the page is seen by GET), else to the overview."""
    if request.method not in ("GET", "HEAD"):
        base, _, query = (page_at or "/").partition("?")
        pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "lang"]
        return base + "?" + urlencode([*pairs, ("lang", lang)])
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return "?" + urlencode([*pairs, ("lang", lang)])


def page(request: Request, template_name: str, who: Principal | None, status: int = 200, /,
         page_at: str | None = None, **values: Any) -> HTMLResponse:
    """Render ``name``; with ``?partial=1`` only its ``live`` block, after the "may be out of date"
    notice (base.html's ``stale`` block), for the live refresh.
    ``page_at``: for an answer to a form, where the same page is seen by GET (``language_switch``)."""
    lang = language_of(request)
    dash = getattr(request.app.state, "dashboard", None)
    context = {"t": translator(lang), "tx": lambda key: text(key, lang), "lang": lang,
               "who": who, "path": request.url.path,
               "stale_since": dash.stale_since(lang) if dash is not None and who else None,
               "unheard": (dash.unheard(who.scope(dash.sources.org), lang)
                           if dash is not None and who else []),
               "query": request.url.query, "csrf": who.csrf if who else None,
               "lang_switch": language_switch(request, "en" if lang == "de" else "de", page_at),
               **values}
    template = _ENV.get_template(template_name)
    # Only the blocks are rendered: whatever they use (macros above all) must be imported inside.
    if request.query_params.get("partial") == "1" and "live" in template.blocks:
        blocks = [_ENV.get_template("base.html").blocks["stale"], template.blocks["live"]]
        body = "".join(part for block in blocks for part in block(template.new_context(context)))
    else:
        body = template.render(context)
    response = HTMLResponse(body, status_code=status)
    if request.query_params.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response
