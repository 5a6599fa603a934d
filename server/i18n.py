"""User-facing texts. German is the default (the users are German schools); English is available.

Templates use ``str.format`` with the alert's labels and annotations; a missing placeholder falls
back to "?" rather than failing, so a text never breaks an API answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, Literal

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Language", "alert_summary", "text"]

Language = Literal["de", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("de", "en")
DEFAULT_LANGUAGE: Final[Language] = "de"

_CATALOGUE: Final[Mapping[Language, Mapping[str, str]]] = {
    "de": {
        "cabinet_offline.lwt": "Schrank {cabinet} ({site}) ist offline: Verbindung verloren (Last Will)",
        "cabinet_offline.stopped": "Schrank {cabinet} ({site}) ist offline: Agent wurde beendet",
        "cabinet_offline.silence": (
            "Schrank {cabinet} ({site}) ist offline: keine Nachricht seit {last_seen_at}"
        ),
        "cabinet_offline": "Schrank {cabinet} ({site}) ist offline",
        "unknown_alert": "Alarm {alertname} ({site} {cabinet})",
    },
    "en": {
        "cabinet_offline.lwt": "Cabinet {cabinet} ({site}) is offline: connection lost (Last Will)",
        "cabinet_offline.stopped": "Cabinet {cabinet} ({site}) is offline: agent was stopped",
        "cabinet_offline.silence": (
            "Cabinet {cabinet} ({site}) is offline: no message since {last_seen_at}"
        ),
        "cabinet_offline": "Cabinet {cabinet} ({site}) is offline",
        "unknown_alert": "Alert {alertname} ({site} {cabinet})",
    },
}


class _Lenient(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def text(key: str, lang: Language = DEFAULT_LANGUAGE, /, **values: str) -> str:
    """The catalogue entry ``key`` in ``lang`` (German if missing there), filled with ``values``."""
    template = _CATALOGUE[lang].get(key) or _CATALOGUE[DEFAULT_LANGUAGE].get(key)
    if template is None:
        raise KeyError(f"no text for {key!r}")
    return template.format_map(_Lenient(values))


def _human(value: str) -> str:
    """ISO timestamps shown as ``2026-11-29 09:00:00 UTC``; anything else unchanged."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return value
    if when.tzinfo is None:
        return value
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def alert_summary(labels: Mapping[str, str], annotations: Mapping[str, str],
                  lang: Language = DEFAULT_LANGUAGE) -> str:
    """One sentence describing an alert, e.g. for the API or a notification."""
    values = {**labels, **{k: _human(v) for k, v in annotations.items()}}
    name = labels.get("alertname", "")
    reason = annotations.get("reason")
    for key in (f"{name}.{reason}", name):
        if key in _CATALOGUE[DEFAULT_LANGUAGE]:
            return text(key, lang, **values)
    return text("unknown_alert", lang, **values)
