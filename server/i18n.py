"""User-facing texts. German is the default (the users are German schools); English is available.

Templates use ``str.format`` with the alert's labels and annotations; a missing placeholder falls
back to "?" rather than failing, so a text never breaks an API answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal
from zoneinfo import ZoneInfo

from . import formatting

if TYPE_CHECKING:
    from .org import Organisation

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Language",
    "alert_summary",
    "annotation_text",
    "cabinet_count",
    "place_names",
    "text",
]

Language = Literal["de", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("de", "en")
DEFAULT_LANGUAGE: Final[Language] = "de"

_SLOT_DE = "Schrank {cabinet} ({site}), Fach {slot}"
_SLOT_EN = "Cabinet {cabinet} ({site}), slot {slot}"
_CAB_DE = "Schrank {cabinet} ({site})"
_CAB_EN = "Cabinet {cabinet} ({site})"

_CATALOGUE: Final[Mapping[Language, Mapping[str, str]]] = {
    "de": {
        "cabinet_offline.lwt": "Schrank {cabinet} ({site}) ist offline: Verbindung verloren (Last Will)",
        "cabinet_offline.stopped": "Schrank {cabinet} ({site}) ist offline: Agent wurde beendet",
        "cabinet_offline.silence": (
            "Schrank {cabinet} ({site}) ist offline: keine Nachricht seit {last_seen_at}"
        ),
        "cabinet_offline": "Schrank {cabinet} ({site}) ist offline",
        "return_cause.power_loss": "wieder da nach Stromausfall oder Neustart (neue Boot-ID)",
        "return_cause.network_loss": "wieder da nach Netzwerkunterbrechung (gleiche Boot-ID)",
        "device_fault": _CAB_DE + ": Gerät {device} antwortet nicht ({error})",
        "ipad_not_returned": _SLOT_DE + ": iPad {asset_tag} nicht zurückgegeben (Kontrolle {check})",
        "ipad_not_returned.idle_unknown": _SLOT_DE + ": iPad {asset_tag} fehlt oder lädt nicht – "
        "das Fach zieht keinen Strom, seit die Tür offen war (Kontrolle {check})",
        "ipad_not_returned.no_sign": _SLOT_DE + ": keine Spur von iPad {asset_tag}, seit die Tür am "
        "{unseen_since} offen war – ein volles iPad hätte seitdem nachgeladen (Kontrolle {check})",
        "slot_unjudgeable": _SLOT_DE + " (iPad {asset_tag}): seit {since} nicht beurteilbar – Messkanal und "
        "Stromversorgung prüfen",
        "ipad_not_charging.present_idle": _SLOT_DE + ": iPad {asset_tag} steckt, lädt aber nicht",
        "ipad_not_charging.fault": _SLOT_DE + ": Ladefehler (iPad {asset_tag})",
        "ipad_not_charging": _SLOT_DE + ": iPad {asset_tag} lädt nicht",
        "ipad_not_charged": _SLOT_DE + ": iPad {asset_tag} zur Morgenkontrolle ({check}) nicht voll",
        "charging_too_long": _SLOT_DE + ": iPad {asset_tag} lädt zu lange (seit {since})",
        "slot_overpower": _SLOT_DE + " (iPad {asset_tag}): {power_w} W, mehr als die erlaubten {rating_w} W",
        "door_open": _CAB_DE + ": Tür steht zu lange offen",
        "door_open_after_hours": _CAB_DE + ": Tür außerhalb der Schulzeit offen",
        "over_temperature": _CAB_DE + ": {temperature_c} °C (Schwelle {threshold_c} °C)",
        "temperature_rise": _CAB_DE + ": Temperatur steigt schnell, {from_c} → {to_c} °C in "
                            "{window_min} min",
        "mains_lost": _CAB_DE + ": keine Netzspannung im Ladefenster",
        "battery_worn": _SLOT_DE + ": Akku von iPad {asset_tag} verschlissen ({ratio_pct} % der "
                        "Anfangsenergie nach {full_charges} Vollladungen)",
        "data_lost": _CAB_DE + ": {lost} Ereignis(se) gingen auf dem Weg verloren (vom Broker "
                     "bestätigt, nie angekommen) – Broker-Persistenz und Warteschlange prüfen",
        "unknown_alert": "Alarm {alertname} ({site} {cabinet})",
        "state.firing": "aktiv",
        "state.pending": "wartet",
        "state.resolved": "behoben",
        "severity.critical": "kritisch",
        "severity.warning": "Warnung",
        "severity.info": "Info",
        "flag.silenced": "stummgeschaltet",
        "flag.inhibited": "unterdrückt (durch {by})",
        "flag.acknowledged": "quittiert von {by} am {at}: {comment}",
        "subject.firing": "[Ladewache] {count} aktive(r) Alarm(e): {title}",
        "subject.resolved": "[Ladewache] behoben: {title}",
        "body.intro": "Ladewache meldet für {title} (zuständig: {receiver}):",
        "body.firing": "Aktiv:",
        "body.resolved": "Behoben:",
        "body.since": "seit {since} – {ago}",
        "body.footer": "Quittieren, Stummschalten oder „Techniker vor Ort“: über die Ladewache-API.",
        "body.open": "Quittieren, Stummschalten oder „Techniker vor Ort“, mit einem Tipp: {url}",
        "digest.missing": "Fehlende iPads zum Ausdrucken: {url}",
        "no_asset_tag": "ohne Inventarnr.",
        # the inventory (server/inventory): what it refuses, and an import's report
        "inv.err.tag_invalid": "Inventarnummer „{value}“ ist ungültig (1–64 druckbare Zeichen).",
        "inv.err.serial_invalid": "Seriennummer „{value}“ ist ungültig (nur Buchstaben und "
        "Ziffern, höchstens 32).",
        "inv.err.name_invalid": "Name „{value}“ ist zu lang (höchstens 100 Zeichen) oder enthält "
        "Steuerzeichen.",
        "inv.err.place_invalid": "Schrank „{value}“ ist ungültig.",
        "inv.err.slot_invalid": "Fach {value} gibt es nicht (1–256).",
        "inv.err.unknown_tag": "Kein iPad mit Inventarnummer „{value}“ im Inventar.",
        "inv.err.tag_taken": "Inventarnummer „{value}“ gehört schon einem anderen iPad.",
        "inv.err.serial_taken": "Seriennummer „{value}“ gehört schon einem anderen iPad.",
        "inv.err.tag_twice": "Inventarnummer „{value}“ steht mehrmals in der Datei.",
        "inv.err.serial_twice": "Seriennummer „{value}“ steht mehrmals in der Datei.",
        "inv.err.file_too_large": "Die Datei ist zu groß ({value}; höchstens 2 MiB).",
        "inv.err.file_empty": "Die Datei ist leer.",
        "inv.err.no_tag_column": "Keine Spalte mit Inventarnummern gefunden (Spalten: {value}); "
        "erwartet z. B. „Inventarnummer“ oder „Asset Tag“.",
        "inv.err.too_many_rows": "Mehr als {value} Zeilen.",
        "inv.err.not_csv": "Keine lesbare CSV-Datei (Zeile {value}).",
        "inv.err.not_yours": "Das iPad „{value}“ steht an einer Schule, die Sie nicht betreuen.",
        "inv.line": "Zeile {line}: {error}",
        "inv.report": "{added} neu, {updated} geändert, {unchanged} unverändert, {skipped} ohne "
        "Inventarnummer übersprungen.",
        "inv.report.dry": "Probelauf: nichts gespeichert.",
        "inv.report.refused": "Nichts importiert – {count} Fehler:",
        "digest.subject": "[Ladewache] Tagesübersicht {school}, {date}: {count} offene(r) Alarm(e)",
        "digest.intro": "Guten Morgen! Offene Alarme an der Schule {school}:",
        "body.new": "Neu:",
        "body.still_open.one": "Eine weitere Meldung besteht weiter.",
        "body.still_open.many": "Weitere {count} Meldungen bestehen weiter.",
        "body.reminder": "Weiterhin offen:",
        "subject.reminder": "[Ladewache] Erinnerung: {count} offene(r) Alarm(e): {title}",
        "flag.acknowledged_short": "quittiert von {by}",
        "digest.subject_unconfirmed": "[Ladewache] Tagesübersicht {school}, {date}: {count} "
                                      "offene(r) Alarm(e), {unconfirmed} Fach/Fächer nicht bestätigt",
        "digest.no_alerts": "Keine offenen Alarme.",
        "digest.unconfirmed": "Nicht bestätigt seit … (ein volles iPad zieht kaum Strom und kann "
                              "unbemerkt entnommen worden sein):",
        "digest.unconfirmed_slot": "- {title}, Fach {slot}, iPad {asset_tag}: nicht bestätigt seit "
                                   "{since}",
        "digest.unconfirmed_slot_untagged": "- {title}, Fach {slot}: nicht bestätigt seit {since}",
        "digest.since_unknown": "unbekannt",
        "cli.none": "Keine Alarme.",
        "cli.why": "Grund",
        # the collector hears no broker (server/notify/blind.py)
        "subject.blind": "[Ladewache] Keine Überwachung: keine Verbindung zum MQTT-Broker",
        "body.blind": "Ladewache hört seit {since} nichts von den Schränken: keine Verbindung zum "
                      "MQTT-Broker. Bis sie wieder steht, wird kein Schrank überwacht und kein "
                      "Alarm gemeldet (weder Tür noch Strom noch fehlende iPads).\n\nBitte den "
                      "MQTT-Broker und die Netzverbindung des Ladewache-Servers prüfen. Eine "
                      "Nachricht folgt, sobald die Verbindung wieder steht.",
        "subject.blind_back": "[Ladewache] Überwachung läuft wieder",
        "body.blind_back": "Ladewache hört seit {back} wieder von den Schränken. {duration} lang "
                           "(ab {since}) wurde kein Schrank überwacht; was die Schränke in dieser "
                           "Zeit gemeldet haben, wird jetzt nachgeholt, soweit der Broker es "
                           "aufbewahrt hat.",
        # cabinets out of earshot: their broker connection is down (server/notify/blind.py)
        "subject.unheard": "[Ladewache] {count} ohne Überwachung: MQTT-Broker {broker} nicht "
                           "erreichbar",
        "count.cabinets.one": "{n} Schrank",
        "count.cabinets.other": "{n} Schränke",
        "body.unheard": "Ladewache erreicht seit {since} den MQTT-Broker {broker} nicht. Diese "
                        "Schränke wurden zuletzt über ihn gehört und werden nicht überwacht, bis "
                        "sie wieder zu hören sind; für sie wird kein Alarm gemeldet, auch nicht "
                        "„offline“:\n{cabinets}\n\nIst der Broker ausgefallen, wechseln die "
                        "Schränke von selbst zum anderen Broker; diese haben es nicht getan "
                        "(ausgeschaltet, oder kein zweiter Broker eingetragen). Läuft er, ist nur "
                        "die Verbindung des Ladewache-Servers zu ihm gestört: bitte den Broker und "
                        "die Netzverbindung dorthin prüfen. Eine Nachricht folgt, sobald die "
                        "Verbindung wieder steht.",
        "subject.unheard_back": "[Ladewache] MQTT-Broker {broker} wieder erreichbar",
        "body.unheard_back": "Ladewache erreicht den MQTT-Broker {broker} seit {back} wieder. "
                             "{duration} lang (ab {since}) waren {count} ohne Überwachung; was "
                             "sie in dieser Zeit gemeldet haben, wird jetzt nachgeholt, soweit "
                             "der Broker es aufbewahrt hat.",
        # the monthly school report (server/notify/monthly.py)
        "subject.monthly": "[Ladewache] Monatsbericht {school}, {month}",
        "body.monthly.intro": "Guten Tag! Der Monatsbericht der Ladewache für {school}, {month}:",
        "body.monthly.school_days": "Schultage: {count}",
        "body.monthly.readiness": "Bereit zu Schulbeginn: {pct} ({ready} von {known} geprüften "
                                  "iPads geladen)",
        "body.monthly.readiness_none": "Bereit zu Schulbeginn: nicht gemessen",
        "body.monthly.not_returned": "Nicht zurückgegebene iPads: {count} ({per_day} je Schultag)",
        "body.monthly.not_returned_total": "Nicht zurückgegebene iPads: {count}",
        "body.monthly.sessions": "Ladevorgänge: {count}",
        "body.monthly.energy": "Energie: {kwh}, Stromkosten {eur}",
        "body.monthly.availability": "Schränke erreichbar: {pct} der Zeit",
        "body.monthly.availability_none": "Schränke erreichbar: nicht gemessen",
        "body.monthly.batteries": "Verschlissene Akkus, die am stärksten gealterten zuerst:",
        "body.monthly.battery": "- iPad {asset_tag}, {place}: Restkapazität {remaining}",
        "body.monthly.battery_unplaced": "- iPad {asset_tag}: Restkapazität {remaining}",
        "body.monthly.slot": "Fach {slot}",
        "body.monthly.batteries_more": "… und {count} weitere im Bericht.",
        "body.monthly.no_worn": "Kein Akku ist verschlissen.",
        "body.monthly.open": "Der ganze Bericht im Dashboard: {url}",
        "body.monthly.footer": "Den ganzen Bericht zeigt das Dashboard unter „Berichte“.",
    },
    "en": {
        "cabinet_offline.lwt": "Cabinet {cabinet} ({site}) is offline: connection lost (Last Will)",
        "cabinet_offline.stopped": "Cabinet {cabinet} ({site}) is offline: agent was stopped",
        "cabinet_offline.silence": (
            "Cabinet {cabinet} ({site}) is offline: no message since {last_seen_at}"
        ),
        "cabinet_offline": "Cabinet {cabinet} ({site}) is offline",
        "return_cause.power_loss": "back after a power loss or restart (new boot id)",
        "return_cause.network_loss": "back after a network outage (same boot id)",
        "device_fault": _CAB_EN + ": device {device} does not answer ({error})",
        "ipad_not_returned": _SLOT_EN + ": iPad {asset_tag} not returned (check {check})",
        "ipad_not_returned.idle_unknown": _SLOT_EN + ": iPad {asset_tag} missing or not charging – "
        "the slot has drawn no power since the door was open (check {check})",
        "ipad_not_returned.no_sign": _SLOT_EN + ": no sign of iPad {asset_tag} since the door was "
        "opened on {unseen_since} – a full iPad would have topped up since (check {check})",
        "slot_unjudgeable": _SLOT_EN + " (iPad {asset_tag}): cannot be judged since {since} – check "
        "the meter channel and the supply",
        "ipad_not_charging.present_idle": _SLOT_EN + ": iPad {asset_tag} present but not charging",
        "ipad_not_charging.fault": _SLOT_EN + ": charging fault (iPad {asset_tag})",
        "ipad_not_charging": _SLOT_EN + ": iPad {asset_tag} not charging",
        "ipad_not_charged": _SLOT_EN + ": iPad {asset_tag} not full at the morning check ({check})",
        "charging_too_long": _SLOT_EN + ": iPad {asset_tag} charging too long (since {since})",
        "slot_overpower": _SLOT_EN + " (iPad {asset_tag}): {power_w} W, above the allowed {rating_w} W",
        "door_open": _CAB_EN + ": door open too long",
        "door_open_after_hours": _CAB_EN + ": door open outside school hours",
        "over_temperature": _CAB_EN + ": {temperature_c} °C (threshold {threshold_c} °C)",
        "temperature_rise": _CAB_EN + ": temperature rising fast, {from_c} → {to_c} °C in "
                            "{window_min} min",
        "mains_lost": _CAB_EN + ": no mains power in the charging window",
        "battery_worn": _SLOT_EN + ": battery of iPad {asset_tag} worn ({ratio_pct} % of its "
                        "early energy after {full_charges} full charges)",
        "data_lost": _CAB_EN + ": {lost} event(s) lost on the way (acknowledged by the broker, "
                     "never arrived) – check the broker's persistence and queue",
        "unknown_alert": "Alert {alertname} ({site} {cabinet})",
        "state.firing": "firing",
        "state.pending": "pending",
        "state.resolved": "resolved",
        "severity.critical": "critical",
        "severity.warning": "warning",
        "severity.info": "info",
        "flag.silenced": "silenced",
        "flag.inhibited": "inhibited (by {by})",
        "flag.acknowledged": "acknowledged by {by} at {at}: {comment}",
        "subject.firing": "[Ladewache] {count} firing alert(s): {title}",
        "subject.resolved": "[Ladewache] resolved: {title}",
        "body.intro": "Ladewache reports for {title} (responsible: {receiver}):",
        "body.firing": "Firing:",
        "body.resolved": "Resolved:",
        "body.since": "since {since} – {ago}",
        "body.footer": "Acknowledge, silence or set \"technician on site\" through the Ladewache API.",
        "body.open": "Acknowledge, silence or set \"technician on site\" in one tap: {url}",
        "digest.missing": "Missing iPads, to print: {url}",
        "no_asset_tag": "without asset tag",
        "inv.err.tag_invalid": "Asset tag “{value}” is invalid (1–64 printable characters).",
        "inv.err.serial_invalid": "Serial number “{value}” is invalid (letters and digits only, "
        "at most 32).",
        "inv.err.name_invalid": "Name “{value}” is too long (at most 100 characters) or holds "
        "control characters.",
        "inv.err.place_invalid": "Cabinet “{value}” is invalid.",
        "inv.err.slot_invalid": "There is no slot {value} (1–256).",
        "inv.err.unknown_tag": "No iPad with asset tag “{value}” in the inventory.",
        "inv.err.tag_taken": "Asset tag “{value}” belongs to another iPad already.",
        "inv.err.serial_taken": "Serial number “{value}” belongs to another iPad already.",
        "inv.err.tag_twice": "Asset tag “{value}” is in the file more than once.",
        "inv.err.serial_twice": "Serial number “{value}” is in the file more than once.",
        "inv.err.file_too_large": "The file is too large ({value}; at most 2 MiB).",
        "inv.err.file_empty": "The file is empty.",
        "inv.err.no_tag_column": "No column of asset tags found (columns: {value}); expected e.g. "
        "“Asset Tag” or “Inventarnummer”.",
        "inv.err.too_many_rows": "More than {value} rows.",
        "inv.err.not_csv": "Not a readable CSV file (line {value}).",
        "inv.err.not_yours": "The iPad “{value}” is at a school you do not look after.",
        "inv.line": "Line {line}: {error}",
        "inv.report": "{added} new, {updated} changed, {unchanged} unchanged, {skipped} without "
        "asset tag skipped.",
        "inv.report.dry": "Dry run: nothing saved.",
        "inv.report.refused": "Nothing imported – {count} error(s):",
        "digest.subject": "[Ladewache] Daily digest {school}, {date}: {count} open alert(s)",
        "digest.intro": "Good morning! Open alerts at {school}:",
        "body.new": "New:",
        "body.still_open.one": "1 more alert still open.",
        "body.still_open.many": "{count} more alerts still open.",
        "body.reminder": "Still open:",
        "subject.reminder": "[Ladewache] Reminder: {count} open alert(s): {title}",
        "flag.acknowledged_short": "acknowledged by {by}",
        "digest.subject_unconfirmed": "[Ladewache] Daily digest {school}, {date}: {count} open "
                                      "alert(s), {unconfirmed} slot(s) not confirmed",
        "digest.no_alerts": "No open alerts.",
        "digest.unconfirmed": "Not confirmed since … (a full iPad draws almost no power and may "
                              "have been taken out unseen):",
        "digest.unconfirmed_slot": "- {title}, slot {slot}, iPad {asset_tag}: not confirmed since "
                                   "{since}",
        "digest.unconfirmed_slot_untagged": "- {title}, slot {slot}: not confirmed since {since}",
        "digest.since_unknown": "unknown",
        "cli.none": "No alerts.",
        "cli.why": "why",
        "subject.blind": "[Ladewache] Not monitoring: no connection to the MQTT broker",
        "body.blind": "Ladewache has heard nothing from the cabinets since {since}: no connection "
                      "to the MQTT broker. Until it is back, no cabinet is monitored and no alert "
                      "is sent (no door, no mains, no missing iPads).\n\nPlease check the MQTT "
                      "broker and the Ladewache server's network. A message follows once the "
                      "connection is back.",
        "subject.blind_back": "[Ladewache] Monitoring again",
        "body.blind_back": "Ladewache has heard from the cabinets again since {back}. For "
                           "{duration} (from {since}) no cabinet was monitored; what the cabinets "
                           "reported meanwhile is being caught up, as far as the broker kept it.",
        "subject.unheard": "[Ladewache] {count} not monitored: MQTT broker {broker} unreachable",
        "count.cabinets.one": "{n} cabinet",
        "count.cabinets.other": "{n} cabinets",
        "body.unheard": "Ladewache has not reached the MQTT broker {broker} since {since}. These "
                        "cabinets were last heard through it and are not monitored until they are "
                        "heard again; no alert is sent for them, not even \"offline\":\n"
                        "{cabinets}\n\nIf the broker is down, cabinets move to the other broker "
                        "by themselves; these did not (switched off, or no second broker in their "
                        "configuration). If it is running, only the Ladewache server's connection "
                        "to it is broken: please check the broker and the network to it. A "
                        "message follows once the connection is back.",
        "subject.unheard_back": "[Ladewache] MQTT broker {broker} reachable again",
        "body.unheard_back": "Ladewache has reached the MQTT broker {broker} again since {back}. "
                             "For {duration} (from {since}) {count} went unmonitored; what "
                             "they reported meanwhile is being caught up, as far as the broker "
                             "kept it.",
        "subject.monthly": "[Ladewache] Monthly report {school}, {month}",
        "body.monthly.intro": "Hello! Ladewache's monthly report for {school}, {month}:",
        "body.monthly.school_days": "School days: {count}",
        "body.monthly.readiness": "Ready at school start: {pct} ({ready} of {known} iPads checked "
                                  "were charged)",
        "body.monthly.readiness_none": "Ready at school start: not measured",
        "body.monthly.not_returned": "iPads not returned: {count} ({per_day} per school day)",
        "body.monthly.not_returned_total": "iPads not returned: {count}",
        "body.monthly.sessions": "Charge sessions: {count}",
        "body.monthly.energy": "Energy: {kwh}, electricity cost {eur}",
        "body.monthly.availability": "Cabinets reachable: {pct} of the time",
        "body.monthly.availability_none": "Cabinets reachable: not measured",
        "body.monthly.batteries": "Worn batteries, most worn first:",
        "body.monthly.battery": "- iPad {asset_tag}, {place}: {remaining} capacity left",
        "body.monthly.battery_unplaced": "- iPad {asset_tag}: {remaining} capacity left",
        "body.monthly.slot": "slot {slot}",
        "body.monthly.batteries_more": "… and {count} more in the report.",
        "body.monthly.no_worn": "No battery is worn.",
        "body.monthly.open": "The full report in the dashboard: {url}",
        "body.monthly.footer": "The dashboard shows the full report under “Reports”.",
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


def cabinet_count(n: int, lang: Language = DEFAULT_LANGUAGE) -> str:
    """``1 Schrank``, ``1.234 Schränke`` (English ``1 cabinet``, ``1,234 cabinets``)."""
    return text("count.cabinets.one" if n == 1 else "count.cabinets.other", lang,
                n=formatting.number(n, lang, digits=0))


# Annotations that are measurements (by their unit suffix) or counts: shown as local numbers. Any
# other number (a device address, an id) stays as it is.
_MEASURES: Final = ("_w", "_c", "_pct", "_min")
_COUNTS: Final = frozenset({"full_charges", "lost"})


def annotation_text(key: str, value: str, zone: ZoneInfo = formatting.DEFAULT_ZONE,
                    lang: Language = DEFAULT_LANGUAGE) -> str:
    """An annotation as people read it: an ISO time local (``Di 01.12.2026, 13:05``), a
    measurement or count as a local number (``12,5``, ``1.234``); anything else unchanged."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is not None and when.tzinfo is not None:
        return formatting.date_time(when, zone, lang)
    if key.endswith(_MEASURES) or key in _COUNTS:
        try:
            return formatting.number(float(value), lang)
        except ValueError:
            return value
    return value


def place_names(labels: Mapping[str, str], org: Organisation | None) -> dict[str, str]:
    """``site``, ``cabinet`` and ``asset_tag`` as the organisation names them (school name, the
    cabinet's name such as "Raum 12", the slot's asset tag); an id stays where nothing is named."""
    if org is None:
        return {}
    site, cabinet = labels.get("site", ""), labels.get("cabinet", "")
    names: dict[str, str] = {}
    school = org.school(site)
    if school is not None:
        names["site"] = school.name
    configured = org.cabinet(site, cabinet)
    if configured is not None and configured.name:
        names["cabinet"] = configured.name
    return names


def alert_summary(labels: Mapping[str, str], annotations: Mapping[str, str],
                  lang: Language = DEFAULT_LANGUAGE, org: Organisation | None = None) -> str:
    """One sentence describing an alert, e.g. for the API or a notification: with ``org``, the
    school, cabinet and asset tag by their names; times in the organisation's zone (Berlin
    without one), numbers in the language's format."""
    zone = org.zone if org is not None else formatting.DEFAULT_ZONE
    # A slot the inventory holds no iPad for: its alerts carry no asset_tag label.
    values = {"asset_tag": text("no_asset_tag", lang), **labels, **place_names(labels, org),
              **{k: annotation_text(k, v, zone, lang) for k, v in annotations.items()}}
    name = labels.get("alertname", "")
    variant = annotations.get("reason") or annotations.get("state")
    for key in (f"{name}.{variant}", name):
        if key in _CATALOGUE[DEFAULT_LANGUAGE]:
            summary = text(key, lang, **values)
            break
    else:
        summary = text("unknown_alert", lang, **values)
    cause = annotations.get("return_cause")
    if cause and f"return_cause.{cause}" in _CATALOGUE[DEFAULT_LANGUAGE]:
        summary += " – " + text(f"return_cause.{cause}", lang)
    return summary
