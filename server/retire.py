"""``cabinet-server retire``: take a collector out of service for good (docs/deploy.md).

Each collector has a persistent session at every broker, and the broker keeps queuing for it
while it is away: up to ``max_queued_bytes`` (1 GiB in deploy/mosquitto) in the broker's memory
until ``[mqtt] session_expiry_s`` (7 days) is over. Run on the retired collector's machine, with
its config, this ends its session at each broker now (a clean start with a session expiry of 0:
the broker discards what it queued) and removes the collector from the store's ``hearing`` table.

What the broker queued for it is gone then; that is safe only while another collector receives
every message. So the command refuses while this collector still says it hears (it runs: stop it
first), and, unless ``--force``, when no other collector does.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import SQLAlchemyError

from .app import broker_settings, mqtt_files
from .clock import utcnow
from .config import MqttSettings, ServerSettings, store_location
from .errors import ServerError
from .formatting import date_time
from .hearing import Hearing
from .ingest import new_client
from .store import open_store
from .store.engine import where

__all__ = ["RetireError", "retire"]

_CONNECT_TIMEOUT_S = 15.0


class RetireError(ServerError):
    """Why the collector cannot be retired: one line for the operator."""


def _end_session(settings: MqttSettings, files: dict[str, Path | None]) -> None:
    """Connect as the collector with a clean start and a session expiry of 0, then disconnect:
    the broker discards the session and what it queued."""
    client = new_client(settings, **files)
    answered = threading.Event()
    outcome: list[str] = []

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason_code: object,
                   properties: object) -> None:
        if getattr(reason_code, "is_failure", False):
            outcome.append(f"the broker refused the login: {reason_code}")
        answered.set()

    client.on_connect = on_connect
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    broker = f"{settings.host}:{settings.port}"
    try:
        client.connect(settings.host, settings.port, keepalive=settings.keepalive,
                       clean_start=True, properties=properties)
    except (OSError, ValueError) as exc:
        raise RetireError(f"broker {broker}: cannot connect: {exc}") from None
    client.loop_start()
    try:
        if not answered.wait(_CONNECT_TIMEOUT_S):
            raise RetireError(f"broker {broker}: no answer within {_CONNECT_TIMEOUT_S:g} s")
        if outcome:
            raise RetireError(f"broker {broker}: {outcome[0]}")
        client.disconnect()
    finally:
        client.loop_stop()


def retire(settings: ServerSettings, force: bool, out: TextIO) -> int:
    """End this collector's broker sessions and forget it in the store; 0, or RetireError (a
    ServerError) saying why not."""
    node = settings.cluster.node
    zone = ZoneInfo(settings.organisation.timezone)
    location = store_location(settings)
    if location is None and not force:
        raise RetireError("this config names no store ([state] url or [state] dir): retire "
                          "asks the store whether another collector receives; use --force to "
                          "end the sessions without asking")
    store = open_store(location)  # StoreError (a ServerError) names the store
    try:
        hearing = Hearing(store, node, timedelta(seconds=settings.cluster.lease_s), utcnow)
        now_hearing = hearing.hearing_now()
        if node in now_hearing:
            raise RetireError(
                f"collector {node!r} is running: it receives from the broker (said until "
                f"{date_time(now_hearing[node], zone, 'en')}). Stop it first (systemctl stop cabinet-server)")
        others = sorted(now_hearing)
        if not others and not force:
            raise RetireError(
                f"no other collector receives from the broker now: what the broker queued for "
                f"{node!r} exists nowhere else. Start another collector first, or use --force "
                f"to discard it anyway")
        files = mqtt_files(settings)
        for broker in broker_settings(settings):
            _end_session(broker, files)
            print(f"broker {broker.host}:{broker.port}: the session of {broker.client_id!r} "
                  "has ended; what was queued for it is discarded", file=out)
        hearing.forget()
    except SQLAlchemyError as exc:
        raise RetireError(f"the store ({where(location)}) failed: {exc}") from None
    finally:
        store.dispose()
    if others:
        print(f"collector {node!r} retired; {', '.join(others)} receive(s) every message",
              file=out)
    else:
        print(f"collector {node!r} retired; no other collector receives now", file=out)
    return 0
