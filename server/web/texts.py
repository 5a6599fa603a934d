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
    "in {seconds} s erneut versuchen.", "login_busy": "Gerade melden sich sehr viele an – bitte "
    "in ein paar Sekunden erneut versuchen.", "session_expired": "Ihre Sitzung ist abgelaufen – "
    "bitte erneut anmelden.", "bad_request": "Ungültige Eingabe.",
    "too_large": "Die Eingabe ist zu lang.", "district": "Kreis", "municipality": "Gemeinde",
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
    "stale_view": "Dieser Server empfängt seit {since} nichts von den Schränken (keine Verbindung "
                  "zum MQTT-Broker): Was hier steht, kann veraltet sein.",
    "unheard_view": "Keine Verbindung zum MQTT-Broker {broker} seit {since}: {count}, zuletzt "
                    "über ihn gehört, werden nicht überwacht, bis sie wieder zu hören sind (auch "
                    "kein Alarm „offline“); was hier zu ihnen steht, kann veraltet sein.",
    "unheard": "nicht überwacht",
    "unheard_hint": "zuletzt über einen MQTT-Broker gehört, zu dem die Verbindung fehlt",
    "unheard_notice": "Nicht überwacht: Dieser Schrank wurde zuletzt über einen MQTT-Broker "
                      "gehört, zu dem der Server gerade keine Verbindung hat. Bis er wieder zu "
                      "hören ist, wird kein Alarm zu ihm gemeldet (auch nicht „offline“); was hier "
                      "steht, ist sein letzter bekannter Stand.",
    "unconfirmed": "nicht bestätigt", "cannot_tell": "nicht beurteilbar",
    "unconfirmed_hint": "geladen, aber seit einer Türöffnung nicht bestätigt: das iPad kann "
    "unbemerkt entnommen worden sein", "cannot_tell_hint": "die Hardware kann es nicht sagen: "
    "seit dem Start des Agenten kein Hinweis, kein Messwert oder keine Strommessung je Fach",
    "power_only": "nur Strom", "power_only_n": "{n}× nur Strom",
    "power_only_hint": "misst nur Strom: ob ein volles iPad entnommen wurde, zeigt sich erst, "
    "wenn es nachlädt",
    "power_only_notice": "Dieser Schrank misst nur Strom: ob ein volles iPad entnommen wurde, "
    "zeigt sich erst, wenn es nachlädt (bis zu {window}). Präsenzschalter oder Steckererkennung "
    "geben bis zur Rückgabeprüfung eine sichere Antwort.",
    "power_only_notice.plain": "Dieser Schrank misst nur Strom: ob ein volles iPad entnommen "
    "wurde, zeigt sich erst, wenn es nachlädt. Präsenzschalter oder Steckererkennung geben bis "
    "zur Rückgabeprüfung eine sichere Antwort.",
    "no_slot_meters_notice": "Dieser Schrank misst keinen Strom je Fach: kein Fach kann beurteilt "
    "werden, nur Tür, Netz und Temperatur.",
    "sensing": "Erfassung", "sense.slot_power": "Strom je Fach", "sense.presence": "Präsenz je Fach",
    "sense.door": "Türkontakt", "sense.unknown": "unbekannt (Agent vor Protokollrevision 2)",
    "certainty": "Gewissheit", "cert.certain": "sicher", "cert.probable": "wahrscheinlich",
    "cert.cannot_tell": "nicht beurteilbar",
    "mark.unconfirmed": "nicht bestätigt seit {since}", "mark.unconfirmed.plain": "nicht bestätigt",
    "mark.no_sign": "kein Lebenszeichen seit {since}", "mark.no_sign.plain": "kein Lebenszeichen",
    "mark.probable": "wahrscheinlich, unbeobachtet seit {since}",
    "mark.probable.plain": "wahrscheinlich", "mark.cannot_tell": "nicht beurteilbar",
    "mark.idle_unclear": "da, Ladezustand unklar",
    "legend.probable": "nicht bestätigt (kann unbemerkt entnommen sein)",
    "legend.cannot_tell": "nicht beurteilbar",
    "last_draw": "zuletzt Strom gezogen", "unseen_since": "unbeobachtet seit",
    "unseen_since_hint": "ab der ersten Türöffnung nach dem letzten Strombezug kann das iPad "
    "unbemerkt entnommen worden sein",
    "unconfirmed_list": "Nicht bestätigt", "unconfirmed_list_hint": "Ein volles iPad zieht kaum "
    "Strom und kann bei einer Türöffnung unbemerkt entnommen worden sein. Das ist kein Alarm: "
    "nachladen bestätigt es; sonst zeigt es sich nach dem Beweisfenster.",
    "no_unconfirmed": "Alle geladenen iPads sind bestätigt.",
    # issue 16: the overview's filters and counts, silences in words, the phone layout
    "filter": "Filtern", "filter_all": "alle", "filter_reset": "alle zeigen", "filter_total": "Auswahl",
    "state_counts": "Fächer nach Zustand", "cabinets_online": "Schränke online",
    "silence.what": "Was", "silence.by": "von", "silence.until": "bis",
    "silence.all_schools": "alle Schulen", "silence.all_cabinets": "alle Schränke",
    "silence.all_rules": "alle Alarme", "silence.weekly": "wöchentlich {start}–{end}",
    "device": "Gerät", "refresh_paused": "Aktualisierung angehalten, solange Sie hier schreiben.",
    "rule.cabinet_offline": "Schrank offline", "rule.device_fault": "Gerät antwortet nicht",
    "rule.ipad_not_returned": "iPad nicht zurückgegeben",
    "rule.slot_unjudgeable": "Fach nicht beurteilbar", "rule.ipad_not_charging": "iPad lädt nicht",
    "rule.ipad_not_charged": "iPad zur Morgenkontrolle nicht voll",
    "rule.charging_too_long": "lädt zu lange", "rule.slot_overpower": "Fach über Nennleistung",
    "rule.door_open": "Tür zu lange offen", "rule.door_open_after_hours": "Tür außerhalb der Schulzeit offen",
    "rule.over_temperature": "Übertemperatur", "rule.temperature_rise": "Temperatur steigt schnell",
    "rule.mains_lost": "keine Netzspannung", "rule.battery_worn": "Akku verschlissen",
    "rule.data_lost": "Daten verloren",
    "end.full": "voll geladen", "end.removed": "entnommen", "end.power_cut": "Strom weg",
    "end.unknown": "unbekannt",
    "data_quality": "Datenqualität",
    "dq.rejected": "{count} Nachricht(en) abgewiesen, zuletzt: {reason}",
    "dq.out_of_window": "{count} Nachricht(en) mit unmöglicher Uhrzeit, zur Empfangszeit gespeichert",
    "dq.events_lost": "{count} Ereignis(se) unterwegs verloren",
    "reject.bad_json": "kein gültiges JSON", "reject.schema": "Format verletzt",
    "reject.too_large": "zu groß", "reject.topic_mismatch": "gibt sich als anderer Schrank aus",
    "reject.too_many_slots": "mehr Fächer als der Schrank hat",
    "reject.too_many_devices": "zu viele Geräte", "reject.internal": "interner Fehler",
    # the "Fehlende iPads" list (server/web/missing.py)
    "missing_list": "Fehlende iPads", "missing_since": "fehlt seit", "missing_found": "Befund",
    "missing_check": "Rückgabeprüfung", "missing_back": "zurück seit",
    "missing_as_of": "Stand: {at}", "missing_all": "alle", "missing_show": "Anzeigen",
    "missing_print_view": "Druckansicht (A4)", "missing_back_to_list": "zurück zur Liste",
    "missing_none": "Keine fehlenden iPads.",
    "missing_hint": "iPads, die bei der Rückgabeprüfung nicht zurück waren (heute oder bis jetzt), "
    "und solche, die nach Indizien fehlen: kein Nachladen während des ganzen Beweisfensters. "
    "„sicher“: als leer erkannt; „wahrscheinlich“: kann seit der genannten Zeit unbemerkt "
    "entnommen worden sein.",
    "missing.found.check": "bei der Rückgabeprüfung {check} nicht zurück",
    "missing.found.evidence": "kein Lebenszeichen im Beweisfenster",
    "missing.back": "wieder da seit {at}",
    "missing.how.check": "Rückgabeprüfung", "missing.how.evidence": "Indizien (kein Nachladen)",
    # the CSV exports' header rows (server/web/data.py), beside municipality, school, cabinet (the
    # cabinet's name), slot, asset_tag, state and severity above
    "csv.site": "Schul-Kennung", "csv.cabinet_id": "Schrank-Kennung",
    "csv.power_w": "Leistung (W)", "csv.since": "Zustand seit", "csv.cabinet_status": "Schrank-Status",
    "csv.started_at": "Beginn", "csv.ended_at": "Ende", "csv.duration_s": "Dauer (s)",
    "csv.energy_wh": "Energie (Wh)", "csv.peak_w": "Spitzenleistung (W)",
    "csv.end_reason": "Grund des Endes", "csv.taper_wh": "Energie Ladeschluss (Wh)",
    "csv.energy_method": "Energie gemessen über",
    "em.counter": "Zähler des Messgeräts", "em.mixed": "Zähler, teils Leistung × Zeit",
    "em.integrated": "Leistung × Zeit",
    "csv.fingerprint": "Alarm-Kennung", "csv.alertname": "Alarmregel", "csv.summary": "Meldung",
    "csv.active_at": "Aktiv seit", "csv.starts_at": "Alarm seit", "csv.ends_at": "Behoben am",
    "csv.acknowledged_by": "Quittiert von", "csv.ack_comment": "Kommentar zur Quittierung",
    "csv.silenced": "Stummgeschaltet",
    # the inventory (server/web/inventory_pages.py)
    "csv.yes": "ja", "csv.no": "nein",
    "bat.title": "Akku", "bat.baseline": "anfangs", "bat.worn_line": "verschlissen unter",
    "bat.remaining": "{pct} % der anfänglichen Ladeenergie, nach {n} Vollladungen",
    "bat.worn": "verschlissen, zum Austausch vormerken",
    "bat.unknown": "Noch keine Aussage: zu wenige volle Ladungen.",
    "inv.sessions": "Ladevorgänge (in jedem Fach, in dem es lag)",
    "range.day": "24 Stunden", "range.week": "7 Tage", "range.month": "30 Tage",
    "source_store": "Zustände aus dem Speicher des Servers (bleiben über Neustarts erhalten); "
    "die Leistungskurve der letzten Stunden aus dem Arbeitsspeicher.",
    "grafana": "Messkurven in Grafana",
    "inv.count": "{count} iPads", "inv.name": "Name",
    "inv.serial": "Seriennummer", "inv.place": "Ort", "inv.unplaced": "in keinem Fach",
    "inv.none": "Keine iPads im Inventar.", "inv.search_hint": "Inventarnr., Name, Seriennr.",
    "inv.truncated": "Gezeigt werden die ersten {count} – bitte nach Schule filtern.",
    "inv.new": "iPad hinzufügen", "inv.add": "Hinzufügen",
    "inv.import": "Aus dem MDM importieren (CSV)",
    "inv.import_hint": "Die Geräteliste aus Jamf, Relution, Mosyle oder Intune als CSV-Datei "
    "(höchstens {kib} KiB): Seriennummer, Inventarnummer, Name. Alles oder nichts: bei einem "
    "Fehler wird nichts übernommen. iPads, die in der Datei fehlen, bleiben im Inventar.",
    "inv.file": "Datei", "inv.dry_run": "nur prüfen, nichts speichern",
    "inv.do_import": "Importieren", "inv.changed": "Zuletzt geändert", "inv.edit": "Ändern",
    "inv.save": "Speichern", "inv.remove_from_slot": "Aus dem Fach nehmen",
    "inv.delete": "Aus dem Inventar löschen", "inv.moves": "Ortswechsel",
    "inv.no_moves": "Noch kein Ortswechsel.", "inv.assign": "iPad zuordnen",
    "inv.change_ipad": "anderes iPad zuordnen", "inv.assign_button": "Zuordnen",
    "inv.this_slot_ipad": "iPad in diesem Fach", "inv.none_here": "keines eingetragen",
    "inv.assign_hint": "Die Inventarnummer des iPads, das jetzt in diesem Fach wohnt. Ein anderes "
    "iPad, das hier eingetragen war, wird aus dem Fach genommen (es bleibt im Inventar); eine "
    "neue Nummer wird ins Inventar aufgenommen.",
    "inv.clear": "Fach leeren (kein iPad eintragen)",
    # the school reports (server/web/report_pages.py, report_export.py)
    "rep.reports": "Berichte", "rep.title": "Schulbericht", "rep.period": "Zeitraum",
    "rep.from": "von", "rep.to": "bis", "rep.show": "Anzeigen", "rep.all": "alle",
    "rep.last_month": "Vormonat", "rep.this_month": "dieser Monat",
    "rep.school_year": "dieses Schuljahr", "rep.days": "{days}, davon {school_days}",
    "rep.n_days.one": "{n} Tag", "rep.n_days.other": "{n} Tage",
    "rep.n_school_days.one": "{n} Schultag", "rep.n_school_days.other": "{n} Schultage",
    "rep.as_of": "Stand: {at}",
    "rep.school_days": "Schultage", "rep.readiness": "Bereit zu Schulbeginn",
    "rep.not_returned": "nicht zurückgegeben", "rep.per_school_day": "je Schultag",
    "rep.sessions": "Ladevorgänge", "rep.energy": "Energie", "rep.cost": "Stromkosten",
    "rep.availability": "Schränke erreichbar", "rep.subtotal": "Summe {name}",
    "rep.no_municipality": "ohne Gemeinde", "rep.total": "Gesamt",
    "rep.figures": "Zahlen je Schule",
    "rep.chart_readiness": "Bereit zu Schulbeginn, je Schultag",
    "rep.chart_readiness_summary": "im Mittel {avg}, am wenigsten {low} am {day}",
    "rep.of": "{part} von {whole}",
    "rep.chart_not_returned": "Nicht zurückgegebene iPads, je Schultag",
    "rep.chart_not_returned_summary": "insgesamt {total}, die meisten ({most}) am {day}",
    "rep.chart_all_returned": "an jedem Schultag alle zurück",
    "rep.batteries": "Akkus nach Verschleiß", "rep.place": "Ort",
    "rep.remaining": "Restkapazität", "rep.full_charges": "volle Ladungen",
    "rep.worn": "verschlissen",
    "rep.batteries_hint": "Die am stärksten gealterten Akkus zuerst (höchstens {count}): die "
    "Kapazität heute gegenüber den ersten vollen Ladungen desselben iPads. Diese iPads zuerst "
    "ersetzen.",
    "rep.no_batteries": "Noch kein Akku beurteilt: dafür braucht ein iPad etwa zehn volle "
    "Ladungen.",
    "rep.no_store": "Berichte brauchen den Speicher des Servers; er ist hier nicht eingerichtet.",
    "rep.no_data": "Für diesen Zeitraum liegen noch keine Daten vor.",
    "rep.print_view": "Druckansicht (A4)", "rep.csv": "CSV für Excel",
    "rep.xlsx": "Excel-Arbeitsmappe (XLSX)", "rep.back": "zurück zum Bericht",
    "rep.bad_date": "„{value}“ ist kein Datum – bitte ein Datum wie 01.11.2026 eingeben.",
    "rep.date_hint": "TT.MM.JJJJ",
    "rep.bad_order": "Der Zeitraum beginnt ({first}) nach seinem Ende ({last}).",
    "rep.too_long": "Der Zeitraum ist zu lang: höchstens {max} Tage, gewählt sind {days}.",
    "rep.out_of_range": "Berichte gibt es nur für Tage vom {first} bis {last}.",
    "rep.hint": "Bereit zu Schulbeginn: Anteil der iPads, die zu Beginn der ersten Stunde geladen "
    "waren (je Schultag; nur Schulen mit gemeinsamem iPad-Pool). Nicht zurückgegeben: iPads, die "
    "bei der letzten Rückgabeprüfung des Tages fehlten. Energie der beendeten Ladevorgänge, "
    "Stromkosten zu {price} je kWh. Schränke erreichbar: Anteil der Zeit, in der die Schränke "
    "online waren.",
    "rep.file": "schulbericht",
    "rep.csv.day": "Datum", "rep.csv.school_day": "Schultag", "rep.csv.ready": "iPads bereit",
    "rep.csv.ready_known": "beurteilt zu Schulbeginn", "rep.csv.readiness": "Bereitschaft (%)",
    "rep.csv.not_returned": "nicht zurückgegeben", "rep.csv.return_known": "beurteilt bei Rückgabe",
    "rep.csv.per_school_day": "nicht zurückgegeben je Schultag",
    "rep.csv.energy_kwh": "Energie (kWh)", "rep.csv.cost_eur": "Stromkosten (EUR)",
    "rep.csv.availability": "Schränke erreichbar (%)", "rep.csv.level": "Ebene",
    "rep.csv.rank": "Rang", "rep.csv.remaining": "Restkapazität (%)",
    "rep.sheet.summary": "Übersicht", "rep.sheet.days": "Tage", "rep.sheet.batteries": "Akkus",
}

_EN: Final[Mapping[str, str]] = {
    "title": "Ladewache", "online": "online", "cs.online": "online", "cs.offline": "offline",
    "live": "live", "overview": "Overview", "alerts": "Alerts", "search": "Search", "login": "Log in",
    "logout": "Log out", "user": "User", "password": "Password", "login_failed": "Login failed.",
    "login_wait": "Too many failed attempts – try again in {seconds} s.",
    "login_busy": "Very many people are logging in right now – try again in a few seconds.",
    "session_expired": "Your session has expired – please log in again.",
    "bad_request": "Invalid input.", "too_large": "The input is too long.", "district": "District",
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
    "stale_view": "This server has received nothing from the cabinets since {since} (no "
                  "connection to the MQTT broker): what you see here may be out of date.",
    "unheard_view": "No connection to the MQTT broker {broker} since {since}: {count} last heard "
                    "through it are not monitored until they are heard again (no \"offline\" "
                    "alert either); what you see of them may be out of date.",
    "unheard": "not monitored",
    "unheard_hint": "last heard through an MQTT broker this server has no connection to",
    "unheard_notice": "Not monitored: this cabinet was last heard through an MQTT broker this "
                      "server has no connection to right now. Until it is heard again, no alert "
                      "about it is sent (not even \"offline\"); what you see is its last known "
                      "state.",
    "unconfirmed": "not confirmed", "cannot_tell": "cannot tell",
    "unconfirmed_hint": "charged, but not confirmed since a door opening: the iPad may have been "
    "taken out unseen", "cannot_tell_hint": "the hardware cannot tell: no evidence since the "
    "agent started, no reading, or no power meter per slot",
    "power_only": "power only", "power_only_n": "{n}× power only",
    "power_only_hint": "measures power only: whether a full iPad was taken out shows only when it "
    "tops up",
    "power_only_notice": "This cabinet measures power only: whether a full iPad was taken out "
    "shows only when it tops up (up to {window}). Presence switches or plug detection give a "
    "certain answer by the return check.",
    "power_only_notice.plain": "This cabinet measures power only: whether a full iPad was taken "
    "out shows only when it tops up. Presence switches or plug detection give a certain answer "
    "by the return check.",
    "no_slot_meters_notice": "This cabinet has no power meter per slot: no slot can be judged, "
    "only door, mains and temperature.",
    "sensing": "Sensing", "sense.slot_power": "power per slot", "sense.presence": "presence per slot",
    "sense.door": "door contact", "sense.unknown": "unknown (agent before protocol revision 2)",
    "certainty": "Certainty", "cert.certain": "certain", "cert.probable": "probable",
    "cert.cannot_tell": "cannot tell",
    "mark.unconfirmed": "not confirmed since {since}", "mark.unconfirmed.plain": "not confirmed",
    "mark.no_sign": "no sign of life since {since}", "mark.no_sign.plain": "no sign of life",
    "mark.probable": "probable, unseen since {since}", "mark.probable.plain": "probable",
    "mark.cannot_tell": "cannot tell", "mark.idle_unclear": "present, charge unclear",
    "legend.probable": "not confirmed (may have been taken out unseen)",
    "legend.cannot_tell": "cannot tell",
    "last_draw": "last drew power", "unseen_since": "unseen since",
    "unseen_since_hint": "from the first door opening after its last draw the iPad may have been "
    "taken out unseen",
    "unconfirmed_list": "Not confirmed", "unconfirmed_list_hint": "A full iPad draws almost no "
    "power and may have been taken out unseen when the door was open. This is no alert: a top-up "
    "confirms it; otherwise it shows after the evidence window.",
    "no_unconfirmed": "Every charged iPad is confirmed.",
    # issue 16: the overview's filters and counts, silences in words, the phone layout
    "filter": "Filter", "filter_all": "all", "filter_reset": "show all", "filter_total": "Selection",
    "state_counts": "Slots by state", "cabinets_online": "cabinets online",
    "silence.what": "What", "silence.by": "by", "silence.until": "until",
    "silence.all_schools": "all schools", "silence.all_cabinets": "all cabinets",
    "silence.all_rules": "all alerts", "silence.weekly": "weekly {start}–{end}",
    "device": "Device", "refresh_paused": "Updates paused while you write here.",
    "rule.cabinet_offline": "Cabinet offline", "rule.device_fault": "Device not answering",
    "rule.ipad_not_returned": "iPad not returned",
    "rule.slot_unjudgeable": "Slot cannot be judged", "rule.ipad_not_charging": "iPad not charging",
    "rule.ipad_not_charged": "iPad not full at the morning check",
    "rule.charging_too_long": "Charging too long", "rule.slot_overpower": "Slot over its rating",
    "rule.door_open": "Door open too long", "rule.door_open_after_hours": "Door open after hours",
    "rule.over_temperature": "Over temperature", "rule.temperature_rise": "Temperature rising fast",
    "rule.mains_lost": "No mains power", "rule.battery_worn": "Battery worn",
    "rule.data_lost": "Data lost",
    "end.full": "fully charged", "end.removed": "taken out", "end.power_cut": "power cut",
    "end.unknown": "unknown",
    "data_quality": "Data quality",
    "dq.rejected": "{count} message(s) refused, the last: {reason}",
    "dq.out_of_window": "{count} message(s) with an impossible time, stored at their receive time",
    "dq.events_lost": "{count} event(s) lost on the way",
    "reject.bad_json": "not valid JSON", "reject.schema": "breaks the format",
    "reject.too_large": "too large", "reject.topic_mismatch": "claims to be another cabinet",
    "reject.too_many_slots": "more slots than the cabinet has",
    "reject.too_many_devices": "too many devices", "reject.internal": "internal error",
    # the "Fehlende iPads" list (server/web/missing.py)
    "missing_list": "Missing iPads", "missing_since": "missing since", "missing_found": "Finding",
    "missing_check": "Return check", "missing_back": "back since",
    "missing_as_of": "As of {at}", "missing_all": "all", "missing_show": "Show",
    "missing_print_view": "Print view (A4)", "missing_back_to_list": "back to the list",
    "missing_none": "No missing iPads.",
    "missing_hint": "iPads that were not back at the return check (today, or still not), and "
    "those missing by evidence: no top-up for the whole evidence window. \"certain\": seen "
    "empty; \"probable\": may have been taken out unseen from the time given.",
    "missing.found.check": "not back at the return check {check}",
    "missing.found.evidence": "no sign of life for the evidence window",
    "missing.back": "back since {at}",
    "missing.how.check": "return check", "missing.how.evidence": "evidence (no top-up)",
    # the CSV exports' header rows (server/web/data.py)
    "csv.site": "School id", "csv.cabinet_id": "Cabinet id",
    "csv.power_w": "Power (W)", "csv.since": "State since", "csv.cabinet_status": "Cabinet status",
    "csv.started_at": "Started", "csv.ended_at": "Ended", "csv.duration_s": "Duration (s)",
    "csv.energy_wh": "Energy (Wh)", "csv.peak_w": "Peak power (W)",
    "csv.end_reason": "End reason", "csv.taper_wh": "Taper energy (Wh)",
    "csv.energy_method": "Energy measured by",
    "em.counter": "the meter's counter", "em.mixed": "the counter, partly power × time",
    "em.integrated": "power × time",
    "csv.fingerprint": "Alert id", "csv.alertname": "Alert rule", "csv.summary": "Summary",
    "csv.active_at": "Active since", "csv.starts_at": "Firing since", "csv.ends_at": "Resolved at",
    "csv.acknowledged_by": "Acknowledged by", "csv.ack_comment": "Acknowledgement comment",
    "csv.silenced": "Silenced",
    "csv.yes": "yes", "csv.no": "no",
    "bat.title": "Battery", "bat.baseline": "at first", "bat.worn_line": "worn below",
    "bat.remaining": "{pct} % of its early charge energy, after {n} full charges",
    "bat.worn": "worn, plan a replacement",
    "bat.unknown": "No verdict yet: too few full charges.",
    "inv.sessions": "Charge sessions (in every slot it lived in)",
    "range.day": "24 hours", "range.week": "7 days", "range.month": "30 days",
    "source_store": "States from the server's store (kept across restarts); the power curve of "
    "the last hours from memory.",
    "grafana": "Curves in Grafana",
    "inv.count": "{count} iPads", "inv.name": "Name",
    "inv.serial": "Serial number", "inv.place": "Place", "inv.unplaced": "in no slot",
    "inv.none": "No iPads in the inventory.", "inv.search_hint": "Asset tag, name, serial",
    "inv.truncated": "Showing the first {count} – please filter by school.",
    "inv.new": "Add an iPad", "inv.add": "Add",
    "inv.import": "Import from the MDM (CSV)",
    "inv.import_hint": "The device list from Jamf, Relution, Mosyle or Intune as a CSV file (at "
    "most {kib} KiB): serial number, asset tag, name. All or nothing: with any error nothing is "
    "taken. iPads missing from the file stay in the inventory.",
    "inv.file": "File", "inv.dry_run": "check only, save nothing",
    "inv.do_import": "Import", "inv.changed": "Last changed", "inv.edit": "Edit",
    "inv.save": "Save", "inv.remove_from_slot": "Take out of the slot",
    "inv.delete": "Delete from the inventory", "inv.moves": "Moves",
    "inv.no_moves": "No moves yet.", "inv.assign": "Assign an iPad",
    "inv.change_ipad": "assign another iPad", "inv.assign_button": "Assign",
    "inv.this_slot_ipad": "iPad in this slot", "inv.none_here": "none entered",
    "inv.assign_hint": "The asset tag of the iPad that lives in this slot now. Another iPad "
    "entered here is taken out of the slot (it stays in the inventory); a new tag is added to the "
    "inventory.",
    "inv.clear": "Empty the slot (enter no iPad)",
    # the school reports (server/web/report_pages.py, report_export.py)
    "rep.reports": "Reports", "rep.title": "School report", "rep.period": "Period",
    "rep.from": "from", "rep.to": "to", "rep.show": "Show", "rep.all": "all",
    "rep.last_month": "last month", "rep.this_month": "this month",
    "rep.school_year": "this school year", "rep.days": "{days}, {school_days}",
    "rep.n_days.one": "{n} day", "rep.n_days.other": "{n} days",
    "rep.n_school_days.one": "{n} school day", "rep.n_school_days.other": "{n} school days",
    "rep.as_of": "As of {at}",
    "rep.school_days": "School days", "rep.readiness": "Ready at school start",
    "rep.not_returned": "not returned", "rep.per_school_day": "per school day",
    "rep.sessions": "Charge sessions", "rep.energy": "Energy", "rep.cost": "Electricity cost",
    "rep.availability": "Cabinets reachable", "rep.subtotal": "Total {name}",
    "rep.no_municipality": "no municipality", "rep.total": "Total",
    "rep.figures": "Figures per school",
    "rep.chart_readiness": "Ready at school start, per school day",
    "rep.chart_readiness_summary": "on average {avg}, the fewest {low} on {day}",
    "rep.of": "{part} of {whole}",
    "rep.chart_not_returned": "iPads not returned, per school day",
    "rep.chart_not_returned_summary": "{total} in all, the most ({most}) on {day}",
    "rep.chart_all_returned": "all back on every school day",
    "rep.batteries": "Batteries by wear", "rep.place": "Place",
    "rep.remaining": "Remaining capacity", "rep.full_charges": "full charges",
    "rep.worn": "worn",
    "rep.batteries_hint": "The most aged batteries first (at most {count}): today's capacity "
    "against the same iPad's first full charges. Replace these iPads first.",
    "rep.no_batteries": "No battery judged yet: an iPad needs about ten full charges for that.",
    "rep.no_store": "Reports need the server's store; it is not set up here.",
    "rep.no_data": "There is no data for this period yet.",
    "rep.print_view": "Print view (A4)", "rep.csv": "CSV for Excel",
    "rep.xlsx": "Excel workbook (XLSX)", "rep.back": "back to the report",
    "rep.bad_date": "\"{value}\" is not a date – please enter a date such as 01/11/2026.",
    "rep.date_hint": "DD/MM/YYYY",
    "rep.bad_order": "The period begins ({first}) after it ends ({last}).",
    "rep.too_long": "The period is too long: at most {max} days, {days} chosen.",
    "rep.out_of_range": "Reports cover only days from {first} to {last}.",
    "rep.hint": "Ready at school start: the share of iPads charged when the first lesson began "
    "(per school day; schools with a shared iPad pool only). Not returned: iPads missing at the "
    "day's last return check. Energy of the charge sessions that ended, electricity cost at "
    "{price} per kWh. Cabinets reachable: the share of the time the cabinets were online.",
    "rep.file": "school-report",
    "rep.csv.day": "Date", "rep.csv.school_day": "School day", "rep.csv.ready": "iPads ready",
    "rep.csv.ready_known": "judged at school start", "rep.csv.readiness": "Readiness (%)",
    "rep.csv.not_returned": "not returned", "rep.csv.return_known": "judged at the return check",
    "rep.csv.per_school_day": "not returned per school day",
    "rep.csv.energy_kwh": "Energy (kWh)", "rep.csv.cost_eur": "Electricity cost (EUR)",
    "rep.csv.availability": "Cabinets reachable (%)", "rep.csv.level": "Level",
    "rep.csv.rank": "Rank", "rep.csv.remaining": "Remaining capacity (%)",
    "rep.sheet.summary": "Summary", "rep.sheet.days": "Days", "rep.sheet.batteries": "Batteries",
}

_CATALOGUE: Final[Mapping[Language, Mapping[str, str]]] = {"de": _DE, "en": _EN}


Translate = Callable[..., str]


def translator(lang: Language) -> Translate:
    """``t(key, **values)``: the text in ``lang``, German where English has none, else the key
    itself. Only catalogue texts are formatted: a key that is not in the catalogue is returned as
    it is, so a key that came from a request can never run ``str.format`` on its own fields."""
    own, fallback = _CATALOGUE[lang], _CATALOGUE[DEFAULT_LANGUAGE]

    def t(key: str, **values: object) -> str:
        template = own.get(key) or fallback.get(key)
        if template is None:
            return key
        return template.format(**values) if values else template

    return t


def pick_language(query: str | None, cookie: str | None) -> Language:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate  # type: ignore[return-value]
    return DEFAULT_LANGUAGE
