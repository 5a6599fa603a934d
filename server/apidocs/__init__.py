"""The API's browsable docs at ``/docs``, served from this package: no CDN, so they work on a
school network without internet (issue 16).

FastAPI's own ``/docs`` loads Swagger UI from a CDN and ``/redoc`` ReDoc; both are switched off
(``create_app``) and this page takes ``/docs``. Swagger UI is vendored unchanged from the npm
package swagger-ui-dist (``assets/SOURCE``, ``scripts/vendor-swagger-ui.sh``); ReDoc is not
offered (one reader is enough, and 1 MB less).

``/docs`` and ``/openapi.json`` need no login: they describe the endpoints, hold no data and no
school names, and a script author reads them before having a token. Every endpoint they describe
still needs a login or an API token (docs/dashboard.md, "API tokens for scripts").

``/openapi.json`` declares the API token as an HTTP bearer security scheme (``API_TOKEN``), so
Swagger UI shows its "Authorize" button, and lists it on every operation that needs a login: those
that document a 401 answer (``error_responses(401)``, ``csv_responses``). The public ones
(``/healthz``, ``/metrics``) document none and list no scheme. Only the schema says so: who may
call what is still decided by ``Auth.require`` (a session cookie or a bearer token), unchanged.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["API_TOKEN", "ASSETS", "DOCS_CSP", "declare_api_token", "install_api_docs"]

ASSETS: Final = Path(__file__).parent / "assets"

# Only this server: a page that tried a CDN or the online validator would be blocked by the browser
# (and fail the same way offline). Swagger UI sets style attributes, hence 'unsafe-inline' for styles
# only; its icons are data: URLs.
DOCS_CSP: Final = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                   "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
                   "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

# The name /openapi.json gives the scheme (components.securitySchemes, each operation's security).
API_TOKEN: Final = "apiToken"
_API_TOKEN_SCHEME: Final = {
    "type": "http", "scheme": "bearer", "bearerFormat": "lw_<id>_<secret>",
    "description": "An API token: an admin creates one with `cabinet-server user token NAME` "
                   "(printed once) and it acts as that user, with the user's role and scope. "
                   "Sent as `Authorization: Bearer lw_…`; it needs no CSRF token. In a browser "
                   "that is logged in to the dashboard, reads work without it (the session "
                   "cookie); changes from this page need a token.",
}

_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} – API</title>
<link rel="icon" type="image/png" href="{base}/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="{base}/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{base}{openapi}"></div>
<script src="{base}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{base}/docs/assets/ladewache-docs.js"></script>
</body>
</html>
"""


def install_api_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI on ``app.openapi_url``) and its files under ``/docs/assets``. The app
    must be made with ``docs_url=None, redoc_url=None``."""
    if app.docs_url is not None or app.redoc_url is not None or app.openapi_url is None:
        raise ValueError("install_api_docs needs FastAPI(docs_url=None, redoc_url=None) and an "
                         "openapi_url")
    openapi_url = app.openapi_url
    declare_api_token(app)

    @app.get("/docs", include_in_schema=False)
    def api_docs(request: Request) -> HTMLResponse:
        base = escape(str(request.scope.get("root_path", "")).rstrip("/"))
        page = _PAGE.format(title=escape(app.title), base=base, openapi=escape(openapi_url))
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP,
                                           "X-Content-Type-Options": "nosniff",
                                           "Referrer-Policy": "no-referrer"})

    app.mount("/docs/assets", StaticFiles(directory=ASSETS), name="api-docs-assets")


def declare_api_token(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) declare the API token as a bearer scheme
    and list it on every operation that documents a 401 answer. FastAPI's own ``openapi()`` still
    builds the schema, once, on first use (routes added later are in it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_api_token(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_api_token(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the scheme in ``components.securitySchemes`` and ``security`` on each
    operation answering 401 without a login (changed in place, and returned)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[API_TOKEN] = dict(_API_TOKEN_SCHEME)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "401" in operation.get("responses", {}):
                operation["security"] = [{API_TOKEN: []}]
    return schema
