"""How a CSV export is written for its reader's spreadsheet: German Excel (the default) splits at
``;``, reads ``3,5`` as a number and needs a UTF-8 byte order mark to show umlauts; English
(``?lang=en``) is the plain ``,`` and ``3.5`` of RFC 4180. Times are local, never UTC ISO."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from .. import formatting
from ..i18n import DEFAULT_LANGUAGE, Language

__all__ = ["CsvFormat"]

# Measurements carry at most this many decimals in a cell (watts, watt-hours, seconds).
_DIGITS: Final = 3


@dataclass(frozen=True, slots=True)
class CsvFormat:
    lang: Language = DEFAULT_LANGUAGE
    zone: ZoneInfo = formatting.DEFAULT_ZONE

    @property
    def delimiter(self) -> str:
        return ";" if self.lang == "de" else ","

    @property
    def bom(self) -> str:
        # Without it German Excel reads the file as Windows-1252 ("GrundschÃ¼le").
        return "\ufeff" if self.lang == "de" else ""

    def time(self, moment: datetime | None) -> str:
        return formatting.csv_time(moment, self.zone, self.lang)

    def number(self, value: float) -> str:
        """Without thousands separators: a spreadsheet reads ``1234,5`` as a number, and a
        grouped ``1.234`` as a date or text in some locales."""
        return formatting.number(value, self.lang, _DIGITS, grouping=False)
