"""Read the device list an MDM exports (Jamf Pro, Relution, Mosyle, Intune …) as CSV: serial,
asset tag, name. The headers differ per product and language, the delimiter is a comma or (German
Excel) a semicolon, the encoding UTF-8 with or without BOM or (Excel "CSV") Windows-1252: all of
that is recognised here, and a file that cannot be read is refused with the line and column."""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field
from typing import Final

from .model import InventoryError, clean_name, clean_serial, clean_tag
from .store import ImportReport, ImportRow, Inventory

__all__ = ["MAX_BYTES", "MAX_ROWS", "Parsed", "import_csv", "parse_mdm_csv"]

MAX_BYTES: Final = 2 * 1024 * 1024  # 20,000 iPads with long names fit
MAX_ROWS: Final = 20_000

# Header names seen in exports, folded (lower case, no spaces, "-" or "_", umlauts kept).
_HEADERS: Final[dict[str, frozenset[str]]] = {
    "asset_tag": frozenset({"assettag", "asset", "inventarnummer", "inventarnr", "inventarnr.",
                            "inventar-nr", "inventory", "inventorynumber", "inventorytag",
                            "anlagennummer"}),
    "serial": frozenset({"serialnumber", "serial", "seriennummer", "seriennr", "seriennr.",
                         "serial-nr", "sn"}),
    "name": frozenset({"displayname", "devicename", "name", "gerätename", "gerät", "geraetename",
                       "bezeichnung"}),
}


@dataclass(slots=True)
class Parsed:
    rows: list[ImportRow] = field(default_factory=list)
    skipped: int = 0  # rows without an asset tag
    errors: list[tuple[int, InventoryError]] = field(default_factory=list)


def _fold(header: str) -> str:
    text = unicodedata.normalize("NFC", header).strip().lower()
    return "".join(ch for ch in text if ch not in " _-")


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")  # Excel's "CSV (Trennzeichen-getrennt)"


def _columns(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        folded = _fold(name)
        for key, names in _HEADERS.items():
            if (folded in names or folded.replace(".", "") in names) and key not in found:
                found[key] = index
    return found


def parse_mdm_csv(data: bytes) -> Parsed:
    """The rows of an export. A file without an asset-tag column, too big, or not CSV raises
    ``InventoryError``; a bad value makes an error for its line (the caller imports nothing)."""
    if len(data) > MAX_BYTES:
        raise InventoryError("file_too_large", f"{len(data) // 1024} KiB")
    text = _decode(data)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise InventoryError("file_empty")
        columns = _columns(header)
        if "asset_tag" not in columns:
            raise InventoryError("no_tag_column", ", ".join(h.strip() for h in header)[:80])
        parsed = Parsed()
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(parsed.rows) + parsed.skipped >= MAX_ROWS:
                raise InventoryError("too_many_rows", MAX_ROWS)
            cell = {key: values[i] if i < len(values) else "" for key, i in columns.items()}
            if not cell["asset_tag"].strip():
                parsed.skipped += 1
                continue
            try:
                parsed.rows.append(ImportRow(line, clean_tag(cell["asset_tag"]),
                                             clean_serial(cell.get("serial")),
                                             clean_name(cell.get("name"))))
            except InventoryError as exc:
                parsed.errors.append((line, exc))
    except csv.Error as exc:
        raise InventoryError("not_csv", f"{reader.line_num}: {exc}") from exc
    return parsed


def import_csv(inventory: Inventory, data: bytes, by: str, *, dry_run: bool = False) -> ImportReport:
    """Parse an MDM export and import it all or nothing. A file that cannot be read raises
    ``InventoryError``; bad lines come back in the report's ``errors``, and nothing is saved."""
    parsed = parse_mdm_csv(data)
    if parsed.errors:
        return ImportReport(skipped=parsed.skipped, errors=parsed.errors)
    return inventory.import_rows(parsed.rows, by, dry_run=dry_run, skipped=parsed.skipped)
