"""Notification texts (German by default, English on request) and the webhook JSON document.

A group message tells people what changed, not everything again: an *update* lists the alerts
that are new since the last message and the ones that resolved, each in full, and sums up the
alerts that were already told and still fire in one count line. A *reminder* (nothing changed,
the repeat interval passed) lists every open alert on one short line: reminding is its purpose.
The webhook document carries every alert of the message in full, each marked with its ``change``
(``new``, ``still_open``, ``resolved``): a machine reconciles, people read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Final, Literal
from urllib.parse import quote

from server import formatting
from server.alerts.model import Alert
from server.alerts.status import AlertStatus
from server.i18n import Language, alert_summary, text
from server.org import Organisation
from server.presence import UnconfirmedSlot

from .base import Notification

__all__ = ["PAYLOAD_VERSION", "cabinet_title", "render_digest", "render_group", "render_reminder"]

# 2: every alert has ``change``, a group document has ``message`` ("update"/"reminder"), a digest
# has ``unconfirmed``; on a day without school a group document leaves school-day alerts out.
PAYLOAD_VERSION: Final = 2

Change = Literal["new", "still_open", "resolved"]


def cabinet_title(org: Organisation, site: str, cabinet: str) -> str:
    """'Raum 12, Grundschule am Park', or the ids where the organisation names nothing:
    'k1, Grundschule am Park', 'k1 (gs-park)'."""
    school = org.school(site)
    configured = org.cabinet(site, cabinet)
    cab = configured.name if configured and configured.name else cabinet
    return f"{cab}, {school.name}" if school else f"{cab} ({site})"


def _alert_json(org: Organisation, alert: Alert, lang: Language, status: AlertStatus | None,
                now: datetime, change: Change) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "status": alert.state(now).value,
        "change": change,
        "severity": alert.severity,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "summary": alert_summary(alert.labels, alert.annotations, lang, org),
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
        "acknowledged": ({"by": status.ack.by, "comment": status.ack.comment,
                          "at": status.ack.at.isoformat()}
                         if status is not None and status.ack is not None else None),
    }


def _since(org: Organisation, alert: Alert, lang: Language, now: datetime) -> str:
    """Since the condition became true (``active_at``: a pending alert's ``starts_at`` is still
    ahead), local, with how long ago; never after ``now``."""
    moment = min(alert.active_at, now)
    return text("body.since", lang, since=formatting.date_time(moment, org.zone, lang),
                ago=formatting.ago(moment, now, lang))


def _line(org: Organisation, alert: Alert, lang: Language, status: AlertStatus | None,
          now: datetime) -> str:
    """An alert in full: severity, sentence, since when, and who acknowledged it with what."""
    severity = text(f"severity.{alert.severity}", lang) if alert.severity in (
        "critical", "warning", "info") else alert.severity
    line = f"- [{severity}] {alert_summary(alert.labels, alert.annotations, lang, org)}"
    line += f" ({_since(org, alert, lang, now)})"
    if status is not None and status.ack is not None:
        line += "\n  " + text("flag.acknowledged", lang, by=status.ack.by,
                              at=formatting.date_time(status.ack.at, org.zone, lang),
                              comment=status.ack.comment)
    return line


def _short_line(org: Organisation, status: AlertStatus, lang: Language, now: datetime) -> str:
    """An alert on one line for a reminder: the sentence, since when, and who took it on."""
    alert = status.alert
    line = (f"- {alert_summary(alert.labels, alert.annotations, lang, org)} "
            f"({_since(org, alert, lang, now)})")
    if status.ack is not None:
        line += f" [{text('flag.acknowledged_short', lang, by=status.ack.by)}]"
    return line


def _still_open_line(count: int, lang: Language) -> str:
    if count == 1:
        return text("body.still_open.one", lang)
    return text("body.still_open.many", lang, count=str(count))


def _group_payload(org: Organisation, *, message: Literal["update", "reminder"], key: str,
                   receiver: str, site: str, cabinet: str, title: str,
                   alerts: list[dict[str, Any]], firing: bool, now: datetime,
                   url: str | None = None) -> dict[str, Any]:
    municipality = org.municipality(site)
    school = org.school(site)
    return {
        "version": PAYLOAD_VERSION,
        "kind": "alerts",
        "message": message,
        "group_key": key,
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "site": site,
        "cabinet": cabinet,
        "school": school.name if school else None,
        "municipality": municipality.name if municipality else None,
        "title": title,
        "alerts": alerts,
        "url": url,  # the cabinet's page; null without [http] public_url
        "sent_at": now.isoformat(),
    }


def cabinet_url(base_url: str | None, site: str, cabinet: str) -> str | None:
    """The cabinet's page (alerts first, one tap to acknowledge), for a phone on the way."""
    if base_url is None:
        return None
    return f"{base_url.rstrip('/')}/cabinets/{quote(site)}/{quote(cabinet)}"


def missing_url(base_url: str | None, site: str) -> str | None:
    """The school's missing-iPads list (printable)."""
    return None if base_url is None else f"{base_url.rstrip('/')}/missing?school={quote(site)}"


def render_group(*, org: Organisation, lang: Language, key: str, receiver: str, site: str,
                 cabinet: str, firing: Sequence[AlertStatus], resolved: Sequence[Alert],
                 now: datetime, still_open: Sequence[AlertStatus] = (),
                 base_url: str | None = None) -> Notification:
    """An update: ``firing`` (new since the last message) and ``resolved`` in full, the
    ``still_open`` ones (told before, still firing) as one count line."""
    title = cabinet_title(org, site, cabinet)
    open_count = len(firing) + len(still_open)
    if open_count:
        subject = text("subject.firing", lang, count=str(open_count), title=title)
    else:
        subject = text("subject.resolved", lang, title=title)
    lines = [text("body.intro", lang, title=title, receiver=receiver), ""]
    if firing:
        lines += [text("body.new", lang), *(_line(org, s.alert, lang, s, now) for s in firing), ""]
    if resolved:
        lines += [text("body.resolved", lang), *(_line(org, a, lang, None, now) for a in resolved),
                  ""]
    if still_open:
        lines += [_still_open_line(len(still_open), lang), ""]
    url = cabinet_url(base_url, site, cabinet)
    lines.append(_footer(lang, url))
    alerts = [*(_alert_json(org, s.alert, lang, s, now, "new") for s in firing),
              *(_alert_json(org, s.alert, lang, s, now, "still_open") for s in still_open),
              *(_alert_json(org, a, lang, None, now, "resolved") for a in resolved)]
    payload = _group_payload(org, message="update", key=key, receiver=receiver, site=site,
                             cabinet=cabinet, title=title, alerts=alerts, firing=bool(open_count),
                             now=now, url=url)
    return Notification("alerts", key, subject, "\n".join(lines), payload)


def _footer(lang: Language, url: str | None) -> str:
    return text("body.footer", lang) if url is None else text("body.open", lang, url=url)


def render_reminder(*, org: Organisation, lang: Language, key: str, receiver: str, site: str,
                    cabinet: str, still_open: Sequence[AlertStatus], now: datetime,
                    base_url: str | None = None) -> Notification:
    """A reminder: nothing changed, but these alerts still fire; one short line each."""
    title = cabinet_title(org, site, cabinet)
    subject = text("subject.reminder", lang, count=str(len(still_open)), title=title)
    lines = [text("body.intro", lang, title=title, receiver=receiver), "",
             text("body.reminder", lang), *(_short_line(org, s, lang, now) for s in still_open), "",
             _footer(lang, url := cabinet_url(base_url, site, cabinet))]
    alerts = [_alert_json(org, s.alert, lang, s, now, "still_open") for s in still_open]
    payload = _group_payload(org, message="reminder", key=key, receiver=receiver, site=site,
                             cabinet=cabinet, title=title, alerts=alerts, firing=True, now=now,
                             url=url)
    return Notification("alerts", key, subject, "\n".join(lines), payload)


def _unconfirmed_line(org: Organisation, slot: UnconfirmedSlot, lang: Language) -> str:
    values = {"title": cabinet_title(org, slot.site, slot.cabinet), "slot": str(slot.slot),
              "since": (formatting.date_time(slot.unseen_since, org.zone, lang)
                        if slot.unseen_since else text("digest.since_unknown", lang))}
    if slot.asset_tag is None:
        return text("digest.unconfirmed_slot_untagged", lang, **values)
    return text("digest.unconfirmed_slot", lang, asset_tag=slot.asset_tag, **values)


def _unconfirmed_json(org: Organisation, slot: UnconfirmedSlot) -> dict[str, Any]:
    return {
        "cabinet": slot.cabinet,
        "title": cabinet_title(org, slot.site, slot.cabinet),
        "slot": slot.slot,
        "asset_tag": slot.asset_tag,
        "unseen_since": slot.unseen_since.isoformat() if slot.unseen_since else None,
        "last_draw_at": slot.last_draw_at.isoformat() if slot.last_draw_at else None,
    }


def _digest_subject(lang: Language, *, school: str, day: date, alerts: int,
                    unconfirmed: int) -> str:
    values = {"school": school, "date": formatting.day(day, lang), "count": str(alerts)}
    if unconfirmed:
        return text("digest.subject_unconfirmed", lang, unconfirmed=str(unconfirmed), **values)
    return text("digest.subject", lang, **values)


def render_digest(*, org: Organisation, lang: Language, key: str, site: str, day: date,
                  statuses: Sequence[AlertStatus], now: datetime,
                  unconfirmed: Sequence[UnconfirmedSlot] = (),
                  base_url: str | None = None) -> Notification:
    """One school's morning: its firing alerts, and the slots whose iPad is not confirmed (the
    only place the school hears of those: no alert is raised for them)."""
    school = org.school(site)
    name = school.name if school else site
    subject = _digest_subject(lang, school=name, day=day, alerts=len(statuses),
                              unconfirmed=len(unconfirmed))
    lines = [text("digest.intro", lang, school=name), ""]
    lines += [_line(org, s.alert, lang, s, now) + (f" [{text('flag.silenced', lang)}]"
                                                   if s.silenced_by else "") for s in statuses]
    if not statuses:
        lines.append(text("digest.no_alerts", lang))
    if unconfirmed:
        lines += ["", text("digest.unconfirmed", lang),
                  *(_unconfirmed_line(org, u, lang) for u in unconfirmed)]
    url = missing_url(base_url, site)
    if url is not None:
        lines += ["", text("digest.missing", lang, url=url)]
    payload = {
        "version": PAYLOAD_VERSION,
        "kind": "digest",
        "key": key,
        "site": site,
        "school": name,
        "date": day.isoformat(),
        "alerts": [_alert_json(org, s.alert, lang, s, now, "still_open") for s in statuses],
        "unconfirmed": [_unconfirmed_json(org, u) for u in unconfirmed],
        "missing_url": url,  # the school's missing-iPads list; null without [http] public_url
        "sent_at": now.isoformat(),
    }
    return Notification("digest", key, subject, "\n".join(lines), payload)
