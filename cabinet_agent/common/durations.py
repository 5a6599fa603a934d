"""A duration as people read it: ``5 Tage``, ``2,5 Tage``, ``12 Stunden`` (English ``5 days``).

Here, not in the server, because the agent's ``check-config`` says the evidence window too, and the
agent imports nothing of the server; the dashboard and the server's ``check-config`` use this one."""

from __future__ import annotations

__all__ = ["duration_text"]

_UNITS = {"de": (("Tag", "Tage"), ("Stunde", "Stunden")), "en": (("day", "days"), ("hour", "hours"))}


def duration_text(seconds: float, lang: str = "de") -> str:
    """Days from one day on, hours below; one decimal at most, German with a decimal comma."""
    days_units, hours_units = _UNITS["de" if lang == "de" else "en"]
    days = seconds / 86400
    value, (one, many) = (days, days_units) if days >= 1 else (max(seconds / 3600, 0.0), hours_units)
    rounded = round(value, 1)
    number = str(int(rounded)) if rounded == int(rounded) else f"{rounded:g}"
    if lang == "de":
        number = number.replace(".", ",")
    return f"{number} {one if rounded == 1 else many}"
