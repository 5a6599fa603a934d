"""Values of the inventory, and what a valid asset tag, serial and name are."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

__all__ = [
    "IPad",
    "InventoryError",
    "Move",
    "Place",
    "Snapshot",
    "check_place",
    "clean_name",
    "clean_serial",
    "clean_tag",
]

MAX_TAG: Final = 64
MAX_SERIAL: Final = 32
MAX_NAME: Final = 100
MAX_SLOT: Final = 256  # the protocol's MAX_SLOTS
_SERIAL = re.compile(r"^[A-Z0-9]{1,32}$")
_WIRE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class InventoryError(ValueError):
    """A value the inventory refuses. ``code`` picks the text shown (``inv.err.<code>``);
    ``value`` is the culprit, shown with it."""

    def __init__(self, code: str, value: object = "") -> None:
        super().__init__(f"{code}: {value!s:.80}")
        self.code = code
        self.value = "" if value is None else str(value)[:80]


def _printable(value: str) -> bool:
    return all(unicodedata.category(ch)[0] in "LNPS" or ch == " " for ch in value)


def clean_tag(value: object) -> str:
    """An asset tag as written on the iPad's sticker: 1–64 printable characters, no padding."""
    text = " ".join(str(value or "").split())
    if not text or len(text) > MAX_TAG or not _printable(text):
        raise InventoryError("tag_invalid", text or value)
    return text


def clean_serial(value: object) -> str | None:
    """Apple serials are 10–12 letters and digits; case and spaces are ignored. Empty is none."""
    text = "".join(str(value or "").split()).upper()
    if not text:
        return None
    if not _SERIAL.match(text):
        raise InventoryError("serial_invalid", text)
    return text


def clean_name(value: object) -> str | None:
    text = " ".join(str(value or "").split())
    if not text:
        return None
    if len(text) > MAX_NAME or not _printable(text):
        raise InventoryError("name_invalid", text)
    return text


@dataclass(frozen=True, slots=True, order=True)
class Place:
    site: str
    cabinet: str
    slot: int


def check_place(site: str, cabinet: str, slot: int) -> Place:
    if not _WIRE_ID.match(site) or not _WIRE_ID.match(cabinet):
        raise InventoryError("place_invalid", f"{site}/{cabinet}")
    if not 1 <= slot <= MAX_SLOT:
        raise InventoryError("slot_invalid", slot)
    return Place(site, cabinet, slot)


@dataclass(frozen=True, slots=True)
class IPad:
    asset_tag: str
    serial: str | None
    name: str | None
    place: Place | None
    placed_at: datetime | None
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class Move:
    """An iPad changed place: from ``before`` (None: it had none) to ``after`` (None: taken out
    of the cabinets)."""

    asset_tag: str
    before: Place | None
    after: Place | None
    at: datetime
    by: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Which tag is in which slot, at one revision: what the collector needs per message, held
    in memory (the rest is read from the store when a page asks). Immutable, so readers on any
    thread share it."""

    revision: int
    by_cabinet: Mapping[tuple[str, str], Mapping[int, str]] = field(default_factory=dict)

    def tag_at(self, place: Place) -> str | None:
        return self.by_cabinet.get((place.site, place.cabinet), {}).get(place.slot)
