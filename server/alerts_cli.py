"""``cabinet-server alerts``: what fires and why, read from the durable state file.

It reads the SQLite file in ``[state] dir`` read-only (WAL lets it read while the collector
writes), so it works whether the collector runs or not, and needs no API access. Without a state
dir there is nothing on disk: ask the running collector's ``GET /api/alerts`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from . import formatting
from .alerts.model import AlertState
from .alerts.sqlite import STATE_FILE, SqliteState
from .alerts.status import AlertStatus, alert_statuses
from .clock import utcnow
from .config import ServerSettings, resolve_path
from .errors import ConfigError
from .i18n import Language, alert_summary, text
from .org import Organisation

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
    if settings.state.dir is None:
        raise ConfigError("no [state] dir configured: nothing on disk to read; "
                          "ask the running collector: GET /api/alerts")
    path = resolve_path(settings, settings.state.dir) / STATE_FILE
    if not path.exists():
        raise ConfigError(f"{path}: no alert state yet (has the collector run with this config?)")
    state = SqliteState(path, read_only=True)
    try:
        now = now or utcnow()
        statuses = alert_statuses(state.all(), state.silences(), state.acks(), now)
    finally:
        state.close()
    if not include_resolved:
        statuses = [s for s in statuses if s.state is not AlertState.RESOLVED]
    for line in format_statuses(statuses, lang, settings.organisation):
        print(line, file=out)
    return 0
