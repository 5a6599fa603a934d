"""Notification texts (German by default, English on request) and the webhook JSON document."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from server.alerts.model import Alert
from server.alerts.status import AlertStatus
from server.i18n import Language, alert_summary, human_time, text
from server.org import Organisation

from .base import Notification

__all__ = ["PAYLOAD_VERSION", "cabinet_title", "render_digest", "render_group"]

PAYLOAD_VERSION = 1


def cabinet_title(org: Organisation, site: str, cabinet: str) -> str:
    """'Raum 12 (k1), Grundschule am Park' or just 'k1 (gs-park)' when nothing is configured."""
    school = org.school(site)
    configured = org.cabinet(site, cabinet)
    cab = f"{configured.name} ({cabinet})" if configured and configured.name else cabinet
    return f"{cab}, {school.name}" if school else f"{cab} ({site})"


def _alert_json(alert: Alert, lang: Language, status: AlertStatus | None, now: datetime
                ) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "status": alert.state(now).value,
        "severity": alert.severity,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "summary": alert_summary(alert.labels, alert.annotations, lang),
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
        "acknowledged": ({"by": status.ack.by, "comment": status.ack.comment,
                          "at": status.ack.at.isoformat()}
                         if status is not None and status.ack is not None else None),
    }


def _line(alert: Alert, lang: Language, status: AlertStatus | None) -> str:
    severity = text(f"severity.{alert.severity}", lang) if alert.severity in (
        "critical", "warning", "info") else alert.severity
    line = f"- [{severity}] {alert_summary(alert.labels, alert.annotations, lang)}"
    line += f" ({text('body.since', lang, since=human_time(alert.starts_at.isoformat()))})"
    if status is not None and status.ack is not None:
        line += "\n  " + text("flag.acknowledged", lang, by=status.ack.by,
                              at=human_time(status.ack.at.isoformat()), comment=status.ack.comment)
    return line


def render_group(*, org: Organisation, lang: Language, key: str, receiver: str, site: str,
                 cabinet: str, firing: Sequence[AlertStatus], resolved: Sequence[Alert],
                 now: datetime) -> Notification:
    title = cabinet_title(org, site, cabinet)
    if firing:
        subject = text("subject.firing", lang, count=str(len(firing)), title=title)
    else:
        subject = text("subject.resolved", lang, title=title)
    lines = [text("body.intro", lang, title=title, receiver=receiver), ""]
    if firing:
        lines += [text("body.firing", lang), *(_line(s.alert, lang, s) for s in firing), ""]
    if resolved:
        lines += [text("body.resolved", lang), *(_line(a, lang, None) for a in resolved), ""]
    lines.append(text("body.footer", lang))
    municipality = org.municipality(site)
    school = org.school(site)
    payload = {
        "version": PAYLOAD_VERSION,
        "kind": "alerts",
        "group_key": key,
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "site": site,
        "cabinet": cabinet,
        "school": school.name if school else None,
        "municipality": municipality.name if municipality else None,
        "title": title,
        "alerts": [*(_alert_json(s.alert, lang, s, now) for s in firing),
                   *(_alert_json(a, lang, None, now) for a in resolved)],
        "sent_at": now.isoformat(),
    }
    return Notification("alerts", key, subject, "\n".join(lines), payload)


def render_digest(*, org: Organisation, lang: Language, key: str, site: str, day: date,
                  statuses: Sequence[AlertStatus], now: datetime) -> Notification:
    school = org.school(site)
    name = school.name if school else site
    subject = text("digest.subject", lang, school=name, date=day.isoformat(),
                   count=str(len(statuses)))
    lines = [text("digest.intro", lang, school=name), ""]
    lines += [_line(s.alert, lang, s) + (f" [{text('flag.silenced', lang)}]" if s.silenced_by
                                         else "") for s in statuses]
    payload = {
        "version": PAYLOAD_VERSION,
        "kind": "digest",
        "key": key,
        "site": site,
        "school": name,
        "date": day.isoformat(),
        "alerts": [_alert_json(s.alert, lang, s, now) for s in statuses],
        "sent_at": now.isoformat(),
    }
    return Notification("digest", key, subject, "\n".join(lines), payload)
