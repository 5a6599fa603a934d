"""Per message kind, what a cabinet sent (off the wire, ``mqtt_tap``) against what the TSDB holds.

A telemetry message makes one ``cabinet_poll_ms`` point at its ``ts``, a state one
``cabinet_devices_faulty`` point (telemetry makes one too); points are keyed by time, so a message
sent twice (a QoS 1 retry, a replay from the outbox) is one point. "Lost": sent, at least once, and
no point at its time. Agents in the tests run with a synchronised clock, so their points are stored
at the message's own ``ts``.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .mqtt_tap import PublishTap

__all__ = ["kinds_lost"]

Export = Callable[[str], list[dict[str, Any]]]


def _ms(ts: str) -> int:
    """Milliseconds since the epoch, truncated as the TSDB truncates nanoseconds."""
    when = datetime.fromisoformat(ts)
    return (calendar.timegm(when.utctimetuple()) * 1_000_000 + when.microsecond) // 1000


def _sent(tap: PublishTap, channel: str) -> dict[tuple[str, int], int]:
    """(boot_id, seq) -> ts in ms of every message of this channel sent at least once."""
    sent = {}
    for _, payload in tap.published(f"/{channel}"):
        message = json.loads(payload)
        sent[(message["boot_id"], message["seq"])] = _ms(message["ts"])
    return sent


def _stored(export: Export, metric: str, site: str, cabinet: str) -> set[int]:
    series = export(f'{metric}{{site="{site}",cabinet="{cabinet}"}}')
    return {int(t) for s in series for t in s["timestamps"]}


def kinds_lost(tap: PublishTap, export: Export, site: str, cabinet: str) -> dict[str, dict[str, Any]]:
    """{"telemetry": {"sent": n, "stored": m, "lost": k}, "state": {...}} for one cabinet."""
    figures = {}
    for channel, metric in (("telemetry", "cabinet_poll_ms"), ("state", "cabinet_devices_faulty")):
        sent = _sent(tap, channel)
        stored = _stored(export, metric, site, cabinet)
        missing = sorted(ts for ts in sent.values() if ts not in stored)
        figures[channel] = {"sent": len(sent), "stored": len(sent) - len(missing),
                            "lost": len(missing)}
        if missing:
            figures[f"{channel}_examples"] = {"missing": missing[:3], "stored": sorted(stored)[:3]}
    return figures
