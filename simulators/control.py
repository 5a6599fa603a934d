"""A small JSON HTTP API to look at and change a running ``CabinetSim`` (tests, demos).

Stdlib only (``http.server``), served from a daemon thread. Every answer is JSON; a POST answers
with the new state, an error with ``{"error": "..."}``:

    GET  /state                         ground truth (``CabinetTruth.to_json``)
    POST /slots/{n}/remove
    POST /slots/{n}/insert              {"soc": 0.5, "asset_tag": "...", "health": 0.75, "broken": true,
                                         "capacity_wh": 40.88}
    POST /door                          {"open": true}
    POST /mains                         {"on": false}
    POST /devices/{name}/fault          {"mode": "dead" | "garbage" | "stuck" | "address-reset" | "none"}
    POST /devices/{name}/replace        {"reading_wh": 0}: a new meter; its energy counters count on
                                        from that reading
    POST /advance                       {"seconds": 3600}
    GET  /serial                        every simulated serial line (RTU bus or line board), by bus
    POST /serial/{bus}/unplug           the USB adapter is pulled out: the pty closes
    POST /serial/{bus}/replug           {"link": "/path"}: back, under that path (default: the old)

A serial endpoint answers with its status (link, node, request counters per unit), not the state.

400 for a malformed request, 404 for an unknown slot, device or path, 405 for a wrong method,
409 when the slot's state does not allow the operation (insert into an occupied slot).
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from .cabinet import CabinetSim
from .errors import SimError, SlotStateError, UnknownDeviceError, UnknownSlotError

__all__ = ["MAX_ADVANCE_S", "ControlServer", "SerialEndpoint"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# One request holds the cabinet's lock while it computes; a week is a few seconds of CPU.
MAX_ADVANCE_S = 7 * 24 * 3600.0


class BadRequest(Exception):
    """The request is malformed; the message says what to fix."""


class SerialEndpoint(Protocol):
    """A simulated serial line the control API can unplug and replug (from its own threads)."""

    def status(self) -> dict[str, Any]: ...

    def unplug_threadsafe(self) -> None: ...

    def replug_threadsafe(self, link: Path | None = None) -> Path: ...


Body = dict[str, Any]
Route = Callable[[CabinetSim, re.Match[str], Body], None]
SerialRoute = Callable[[SerialEndpoint, Body], None]


def _number(body: Body, key: str, *, low: float, high: float, required: bool) -> float | None:
    if key not in body:
        if required:
            raise BadRequest(f"missing {key!r}")
        return None
    value = body[key]
    # bool is an int in Python, but true is not a number to a JSON client.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{key!r} must be a number, not {json.dumps(value)}")
    if not low <= value <= high:
        raise BadRequest(f"{key!r} must be between {low:g} and {high:g}, not {value}")
    return float(value)


def _flag(body: Body, key: str) -> bool:
    if key not in body:
        raise BadRequest(f"missing {key!r}")
    value = body[key]
    if not isinstance(value, bool):
        raise BadRequest(f"{key!r} must be true or false, not {json.dumps(value)}")
    return value


def _only(body: Body, *keys: str) -> None:
    unknown = sorted(set(body) - set(keys))
    if unknown:
        allowed = ", ".join(keys) or "none"
        raise BadRequest(f"unknown key(s) {', '.join(unknown)}; allowed: {allowed}")


def _remove(sim: CabinetSim, match: re.Match[str], body: Body) -> None:
    _only(body)
    sim.remove(int(match["slot"]))


def _insert(sim: CabinetSim, match: re.Match[str], body: Body) -> None:
    _only(body, "soc", "asset_tag", "health", "broken", "capacity_wh")
    tag = body.get("asset_tag")
    if tag is not None and (not isinstance(tag, str) or not 0 < len(tag) <= 64):
        raise BadRequest("'asset_tag' must be a string of 1 to 64 characters")
    broken = _flag(body, "broken") if "broken" in body else False
    health = _number(body, "health", low=0.01, high=1.0, required=False)
    sim.insert(int(match["slot"]), soc=_number(body, "soc", low=0.0, high=1.0, required=False),
               asset_tag=tag, health=1.0 if health is None else health, broken=broken,
               capacity_wh=_number(body, "capacity_wh", low=1.0, high=200.0, required=False))


def _door(sim: CabinetSim, match: re.Match[str], body: Body) -> None:
    _only(body, "open")
    sim.set_door(_flag(body, "open"))


def _mains(sim: CabinetSim, match: re.Match[str], body: Body) -> None:
    _only(body, "on")
    sim.set_mains(_flag(body, "on"))


def _fault(sim: CabinetSim, match: re.Match[str], body: Body) -> None:
    _only(body, "mode")
    mode = body.get("mode")
    if not isinstance(mode, str):
        raise BadRequest("missing 'mode': \"dead\", \"garbage\", \"stuck\", \"address-reset\" "
                         "or \"none\"")
    try:
        sim.set_device_fault(match["device"], mode)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


def _replace(sim: CabinetSim, match: re.Match[str], body: Body) -> None:
    _only(body, "reading_wh")
    reading = _number(body, "reading_wh", low=0.0, high=1e12, required=False)
    sim.replace_meter(match["device"], reading or 0.0)


def _advance(sim: CabinetSim, match: re.Match[str], body: Body) -> None:
    _only(body, "seconds")
    seconds = _number(body, "seconds", low=0.0, high=MAX_ADVANCE_S, required=True)
    assert seconds is not None
    sim.advance(seconds)


def _unplug(endpoint: SerialEndpoint, body: Body) -> None:
    _only(body)
    endpoint.unplug_threadsafe()


def _replug(endpoint: SerialEndpoint, body: Body) -> None:
    _only(body, "link")
    link = body.get("link")
    if link is not None and (not isinstance(link, str) or not link.startswith("/")):
        raise BadRequest("'link' must be an absolute path")
    endpoint.replug_threadsafe(Path(link) if link else None)


_SERIAL_ROUTES: list[tuple[re.Pattern[str], SerialRoute]] = [
    (re.compile(r"/serial/(?P<bus>[A-Za-z0-9_.-]{1,64})/unplug"), _unplug),
    (re.compile(r"/serial/(?P<bus>[A-Za-z0-9_.-]{1,64})/replug"), _replug),
]

_POST_ROUTES: list[tuple[re.Pattern[str], Route]] = [
    (re.compile(r"/slots/(?P<slot>\d{1,4})/remove"), _remove),
    (re.compile(r"/slots/(?P<slot>\d{1,4})/insert"), _insert),
    (re.compile(r"/door"), _door),
    (re.compile(r"/mains"), _mains),
    (re.compile(r"/devices/(?P<device>[A-Za-z0-9_.-]{1,64})/fault"), _fault),
    (re.compile(r"/devices/(?P<device>[A-Za-z0-9_.-]{1,64})/replace"), _replace),
    (re.compile(r"/advance"), _advance),
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sim: CabinetSim,
                 serial: Mapping[str, SerialEndpoint]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6  # read by TCPServer.__init__ to make the socket
        super().__init__(address, _Handler)
        self.sim = sim
        self.serial = serial


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "ladewache-cabinet-sim"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/state":
            self._send(HTTPStatus.OK, self.server.sim.truth().to_json())
        elif path == "/serial":
            self._send(HTTPStatus.OK, {b: e.status() for b, e in self.server.serial.items()})
        elif any(p.fullmatch(path) for p, _ in [*_POST_ROUTES, *_SERIAL_ROUTES]):
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{path} takes POST"})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: GET {path}"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/state":
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "/state takes GET"})
            return
        for pattern, route in _POST_ROUTES:
            match = pattern.fullmatch(path)
            if match:
                self._run(route, match)
                return
        for pattern, serial_route in _SERIAL_ROUTES:
            match = pattern.fullmatch(path)
            if match:
                self._run_serial(serial_route, match["bus"])
                return
        self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: POST {path}"})

    def _run_serial(self, route: SerialRoute, bus: str) -> None:
        endpoint = self.server.serial.get(bus)
        if endpoint is None:
            known = ", ".join(self.server.serial) or "none"
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no serial line {bus!r}; simulated: {known}"})
            return
        try:
            route(endpoint, self._body())
        except BadRequest as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except (OSError, RuntimeError) as exc:  # a link path that cannot be made
            self._send(HTTPStatus.CONFLICT, {"error": str(exc)})
        else:
            self._send(HTTPStatus.OK, endpoint.status())

    def _run(self, route: Route, match: re.Match[str]) -> None:
        sim = self.server.sim
        try:
            route(sim, match, self._body())
        except BadRequest as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except (UnknownSlotError, UnknownDeviceError) as exc:
            self._send(HTTPStatus.NOT_FOUND, {"error": str(exc)})
        except SlotStateError as exc:
            self._send(HTTPStatus.CONFLICT, {"error": str(exc)})
        except (SimError, ValueError) as exc:  # the model refused a value, e.g. IPad(soc=...)
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        else:
            self._send(HTTPStatus.OK, sim.truth().to_json())

    def _body(self) -> Body:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise BadRequest(f"body must be at most {MAX_BODY_BYTES} bytes")
        if length == 0:
            return {}
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        return body

    def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # Through logging instead of straight to stderr, so the CLI's log level applies.
        log.debug("%s %s", self.address_string(), format % args)


class ControlServer:
    """The control API on ``host:port`` (0 picks a free port) in a daemon thread."""

    def __init__(self, sim: CabinetSim, *, host: str = "127.0.0.1", port: int = 0,
                 serial: Mapping[str, SerialEndpoint] | None = None) -> None:
        self._httpd = _Server((host, port), sim, serial or {})
        # A short poll interval only makes stop() quick (serve_forever checks for it between polls).
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="sim-control", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()
        log.info("control API on %s", self.url)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout)
        self._httpd.server_close()
