"""``cabinet-server alerts``: what fires and why, read from the durable state file.

It reads the SQLite file in ``[state] dir`` read-only (WAL lets it read while the collector
writes), so it works whether the collector runs or not, and needs no API access. Without a state
dir there is nothing on disk: ask the running collector's ``GET /api/alerts`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from .alerts.model import AlertState
from .alerts.sqlite import STATE_FILE, SqliteState
from .alerts.status import AlertStatus, alert_statuses
from .clock import utcnow
from .config import ServerSettings, resolve_path
from .errors import ConfigError
from .i18n import Language, alert_summary, human_time, text

__all__ = ["format_statuses", "list_alerts"]


def format_statuses(statuses: Sequence[AlertStatus], lang: Language) -> list[str]:
    """One block per alert: state, severity, since when, the sentence, and why (annotations)."""
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
        head = (f"{state.upper():9} {severity:9} {human_time(when.isoformat())}  "
                f"{alert_summary(alert.labels, alert.annotations, lang)}")
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
                                             at=human_time(status.ack.at.isoformat()),
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
    for line in format_statuses(statuses, lang):
        print(line, file=out)
    return 0
