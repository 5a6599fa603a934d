"""The dashboard's texts, German (default) and English; alert summaries come from ``server.i18n``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from ..i18n import DEFAULT_LANGUAGE, LANGUAGES, Language

__all__ = ["pick_language", "translator"]

_DE: Final[Mapping[str, str]] = {
    "title": "Ladewache", "overview": "Übersicht", "alerts": "Alarme", "search": "Suche",
    "login": "Anmelden", "logout": "Abmelden", "user": "Benutzer", "password": "Passwort",
    "login_failed": "Anmeldung fehlgeschlagen.", "login_wait": "Zu viele Fehlversuche – bitte "
    "in {seconds} s erneut versuchen.", "district": "Kreis", "municipality": "Gemeinde",
    "school": "Schule", "cabinet": "Schrank", "cabinets": "Schränke", "slot": "Fach",
    "slots": "Fächer", "online": "online", "present": "vorhanden", "charging": "lädt",
    "charged": "geladen", "missing": "fehlt", "faulty": "Fehler", "unknown": "unbekannt",
    "open_alerts": "offene Alarme", "status": "Status", "door": "Tür", "mains": "Netz",
    "temperature": "Temperatur", "devices": "Geräte", "last_seen": "zuletzt gesehen",
    "asset_tag": "Inventarnr.", "state": "Zustand", "power": "Leistung", "since": "seit",
    "page": "Seite", "of": "von", "prev": "zurück", "next": "weiter",
    "st.empty": "leer", "st.charging": "lädt", "st.charged": "geladen",
    "st.present_idle": "steckt, lädt nicht", "st.fault": "Ladefehler", "st.unknown": "unbekannt",
    "cs.online": "online", "cs.offline": "offline", "cs.stopped": "gestoppt",
    "cs.unknown": "unbekannt", "cs.never": "nie gesehen",
    "door.open": "offen", "door.closed": "geschlossen", "door.unknown": "unbekannt",
    "mains.on": "an", "mains.off": "aus", "mains.unknown": "unbekannt",
    "timeline": "Verlauf", "sessions": "Ladevorgänge", "no_sessions": "Keine Ladevorgänge "
    "gespeichert.", "source_server": "Quelle: Speicher des Servers (seit dessen Start, höchstens "
    "24 h); Ladevorgänge aus der Sitzungsdatenbank.", "started": "Beginn",
    "duration": "Dauer", "energy": "Energie", "end": "Ende", "ack": "Quittieren",
    "comment": "Kommentar", "acknowledged_by": "quittiert von", "silence": "Stummschalten",
    "silenced": "stumm", "hours": "Stunden", "technician": "Techniker vor Ort",
    "technician_until": "Techniker vor Ort bis", "expire": "Beenden",
    "silences": "Stummschaltungen", "no_alerts": "Keine Alarme.", "severity": "Schwere",
    "alert": "Alarm", "actions": "Aktionen", "show_all": "auch behobene",
    "search_hint": "Inventarnummer oder Schule", "no_hits": "Nichts gefunden.",
    "forbidden": "Dafür fehlt Ihnen die Berechtigung.", "not_found": "Nicht gefunden.",
    "export": "Export (CSV)", "inventory": "Inventar", "live": "live",
    "role.admin": "Kreis-Admin", "role.technician": "Techniker", "role.viewer": "Schule (lesen)",
    "auth_off": "Anmeldung ist abgeschaltet ([http] auth = false) – nur für Demos!",
}

_EN: Final[Mapping[str, str]] = {
    "overview": "Overview", "alerts": "Alerts", "search": "Search", "login": "Log in",
    "logout": "Log out", "user": "User", "password": "Password", "login_failed": "Login failed.",
    "login_wait": "Too many failed attempts – try again in {seconds} s.", "district": "District",
    "municipality": "Municipality", "school": "School", "cabinet": "Cabinet",
    "cabinets": "Cabinets", "slot": "Slot", "slots": "Slots", "present": "present",
    "charging": "charging", "charged": "charged", "missing": "missing", "faulty": "faulty",
    "unknown": "unknown", "open_alerts": "open alerts", "status": "Status", "door": "Door",
    "mains": "Mains", "temperature": "Temperature", "devices": "Devices",
    "last_seen": "last seen", "asset_tag": "Asset tag", "state": "State", "power": "Power",
    "since": "since", "page": "Page", "of": "of", "prev": "previous", "next": "next",
    "st.empty": "empty", "st.charging": "charging", "st.charged": "charged",
    "st.present_idle": "present, not charging", "st.fault": "charge fault",
    "st.unknown": "unknown", "cs.stopped": "stopped", "cs.unknown": "unknown",
    "cs.never": "never seen", "door.open": "open", "door.closed": "closed",
    "door.unknown": "unknown", "mains.on": "on", "mains.off": "off", "mains.unknown": "unknown",
    "timeline": "Timeline", "sessions": "Charge sessions", "no_sessions": "No charge sessions "
    "stored.", "source_server": "Source: the server's memory (since it started, at most 24 h); "
    "sessions from the session database.", "started": "Started", "duration": "Duration",
    "energy": "Energy", "end": "End", "ack": "Acknowledge", "comment": "Comment",
    "acknowledged_by": "acknowledged by", "silence": "Silence", "silenced": "silenced",
    "hours": "hours", "technician": "Technician on site",
    "technician_until": "technician on site until", "expire": "End", "silences": "Silences",
    "no_alerts": "No alerts.", "severity": "Severity", "alert": "Alert", "actions": "Actions",
    "show_all": "include resolved", "search_hint": "Asset tag or school",
    "no_hits": "Nothing found.", "forbidden": "You are not allowed to do this.",
    "not_found": "Not found.", "export": "Export (CSV)", "inventory": "Inventory",
    "role.admin": "District admin", "role.technician": "Technician",
    "role.viewer": "School (read-only)",
    "auth_off": "Login is switched off ([http] auth = false) – for demos only!",
}

_CATALOGUE: Final[Mapping[Language, Mapping[str, str]]] = {"de": _DE, "en": _EN}


def translator(lang: Language) -> Callable[..., str]:
    """``t(key, **values)``: the text in ``lang``, German where English has none, else the key."""
    own, fallback = _CATALOGUE[lang], _CATALOGUE[DEFAULT_LANGUAGE]

    def t(key: str, **values: object) -> str:
        template = own.get(key) or fallback.get(key) or key
        return template.format(**values) if values else template

    return t


def pick_language(query: str | None, cookie: str | None) -> Language:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate  # type: ignore[return-value]
    return DEFAULT_LANGUAGE
