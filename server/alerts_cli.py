"""``cabinet-server alerts``: what fires and why, read from the store.

It reads the alert state from the store (``ladewache.sqlite3`` in ``[state] dir``, or ``[state]
url``) without a cache of its own (SQLite in WAL mode and PostgreSQL let it read while the
collector writes), so it works whether the collector runs or not, and needs no API access. Without
a state dir or URL there is nothing to read: ask the running collector's ``GET /api/alerts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from . import formatting
from .alerts.model import AlertState
from .alerts.state import StoredState
from .alerts.status import AlertStatus, alert_statuses
from .alerts.takeover import LEGACY_ALERTS_FILE, take_over_alerts
from .clock import utcnow
from .config import ServerSettings, resolve_path, store_location
from .errors import ConfigError, ServerError
from .i18n import Language, alert_summary, text
from .org import Organisation
from .store import DB_FILE, open_store
from .store.engine import where

__all__ = ["format_statuses", "list_alerts"]


def format_statuses(statuses: Sequence[AlertStatus], lang: Language,
                    org: Organisation | None = None) -> list[str]:
    """One block per alert: state, severity, since when (local time), the sentence (with the
    organisation's names), and why: the labels and annotations as stored, for a technician."""
    zone = org.zone if org is not None else formatting.DEFAULT_ZONE
    if not statuses:
        return [text("cli.none", lang)]
    order = {AlertState.FIRING: 0, AlertState.PENDING: 1, AlertState.RESOLVED: 2}
    lines = []
    for status in sorted(statuses, key=lambda s: (order[s.state], s.alert.starts_at)):
        alert = status.alert
        state = text(f"state.{status.state.value}", lang)
        severity = text(f"severity.{alert.severity}", lang) if alert.severity in (
            "critical", "warning", "info") else alert.severity
        when = alert.ends_at or alert.starts_at
        head = (f"{state.upper():9} {severity:9} {formatting.date_time(when, zone, lang)}  "
                f"{alert_summary(alert.labels, alert.annotations, lang, org)}")
        lines.append(head)
        why = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())
                        if k not in ("alertname", "severity"))
        details = ", ".join(f"{k}={v}" for k, v in sorted(alert.annotations.items()))
        lines.append(f"          {text('cli.why', lang)}: {alert.name} [{why}]"
                     + (f" {details}" if details else ""))
        if status.silenced_by:
            lines.append(f"          {text('flag.silenced', lang)} ({', '.join(status.silenced_by)})")
        if status.inhibited_by:
            lines.append("          " + text("flag.inhibited", lang, by=status.inhibited_by))
        if status.ack is not None:
            lines.append("          " + text("flag.acknowledged", lang, by=status.ack.by,
                                             at=formatting.date_time(status.ack.at, zone, lang),
                                             comment=status.ack.comment))
    return lines


def list_alerts(settings: ServerSettings, lang: Language, include_resolved: bool, out: TextIO,
                now: datetime | None = None) -> int:
    location = store_location(settings)
    if location is None:
        raise ConfigError("no [state] dir configured: nothing on disk to read; "
                          "ask the running collector: GET /api/alerts")
    state_dir = resolve_path(settings, settings.state.dir) if settings.state.dir else None
    if isinstance(location, Path) and not any(
            (location / name).exists() for name in (DB_FILE, LEGACY_ALERTS_FILE)):
        # Opening would create an empty store there: a mistyped directory would list nothing.
        raise ConfigError(f"{location / DB_FILE}: no store yet (has the collector run with this "
                          "config?)")
    engine = open_store(location)  # StoreError (a ServerError) names the store
    try:
        if state_dir is not None:  # after an upgrade the CLI may run before the collector
            take_over_alerts(engine, state_dir)
        state = StoredState(engine, cache=False)
        statuses = alert_statuses(state.all(), state.silences(), state.acks(), now or utcnow())
    except SQLAlchemyError as exc:
        raise ServerError(f"cannot read the alert state ({where(location)}): {exc}") from exc
    finally:
        engine.dispose()
    if not include_resolved:
        statuses = [s for s in statuses if s.state is not AlertState.RESOLVED]
    for line in format_statuses(statuses, lang, settings.organisation):
        print(line, file=out)
    return 0
