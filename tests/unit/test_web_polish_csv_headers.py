"""The CSV exports' header rows are words in the file's language (German by default, English with
``?lang=en``), not the code's snake_case names; every column keeps its place, ids included."""

from __future__ import annotations

import csv
import io
import re

import pytest

from server.web import texts
from server.web.data import ALERTS_COLUMNS, INVENTORY_COLUMNS, SESSIONS_COLUMNS, csv_header
from tests.unit.test_readable_texts import CAB, SITE, SLOT, _get

HEADERS = {
    "inventory.csv": {
        "de": ["Gemeinde", "Schul-Kennung", "Schule", "Schrank-Kennung", "Schrank", "Fach",
               "Inventarnr.", "Zustand", "Leistung (W)", "Zustand seit", "Schrank-Status"],
        "en": ["Municipality", "School id", "School", "Cabinet id", "Cabinet", "Slot", "Asset tag",
               "State", "Power (W)", "State since", "Cabinet status"],
    },
    "sessions.csv": {
        "de": ["Schul-Kennung", "Schule", "Schrank-Kennung", "Schrank", "Fach", "Inventarnr.",
               "Beginn", "Ende", "Dauer (s)", "Energie (Wh)", "Spitzenleistung (W)",
               "Grund des Endes", "Energie Ladeschluss (Wh)", "Energie gemessen über"],
        "en": ["School id", "School", "Cabinet id", "Cabinet", "Slot", "Asset tag", "Started",
               "Ended", "Duration (s)", "Energy (Wh)", "Peak power (W)", "End reason",
               "Taper energy (Wh)", "Energy measured by"],
    },
    "alerts.csv": {
        "de": ["Alarm-Kennung", "Alarmregel", "Zustand", "Schwere", "Schul-Kennung", "Schule",
               "Schrank-Kennung", "Schrank", "Fach", "Inventarnr.", "Meldung", "Aktiv seit",
               "Alarm seit", "Behoben am", "Quittiert von", "Kommentar zur Quittierung",
               "Stummgeschaltet"],
        "en": ["Alert id", "Alert rule", "State", "Severity", "School id", "School", "Cabinet id",
               "Cabinet", "Slot", "Asset tag", "Summary", "Active since", "Firing since",
               "Resolved at", "Acknowledged by", "Acknowledgement comment", "Silenced"],
    },
}
SNAKE = re.compile(r"^[a-z]+(_[a-z]+)+$")


def _rows(export: str, lang: str) -> list[list[str]]:
    text = _get(f"/api/export/{export}" + ("?lang=en" if lang == "en" else ""))
    delimiter = ";" if lang == "de" else ","
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""),
                           delimiter=delimiter))


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("export", sorted(HEADERS))
def test_the_header_row_is_in_the_files_language(export: str, lang: str) -> None:
    rows = _rows(export, lang)
    assert rows[0] == HEADERS[export][lang]
    assert len(rows) > 1, export  # the rows are there, one cell under each header
    for row in rows[1:]:
        assert len(row) == len(rows[0]), row
    assert not any(SNAKE.match(cell) for cell in rows[0]), rows[0]


def test_ids_and_names_stand_under_their_headers() -> None:
    """The id columns are kept (scripts join on them) and say so; the names stand beside them."""
    for export in ("inventory.csv", "sessions.csv"):
        for lang, (site, cabinet, school, name, slot) in {
                "de": ("Schul-Kennung", "Schrank-Kennung", "Schule", "Schrank", "Fach"),
                "en": ("School id", "Cabinet id", "School", "Cabinet", "Slot")}.items():
            header, *rows = _rows(export, lang)
            row = next(r for r in rows if r[header.index(slot)] == str(SLOT))
            assert (row[header.index(site)], row[header.index(cabinet)]) == (SITE, CAB)
            assert row[header.index(school)] == "Grundschule Am Nordhang"
            assert row[header.index(name)] == "Raum 12"


def test_every_column_has_a_text_in_both_languages() -> None:
    for columns in (INVENTORY_COLUMNS, SESSIONS_COLUMNS, ALERTS_COLUMNS):
        for key in columns:
            assert texts._DE.get(key) and texts._EN.get(key), key
        german, english = csv_header(columns, "de"), csv_header(columns, "en")
        assert len(set(german)) == len(columns) and len(set(english)) == len(columns)
