"""How sure a slot's state is, as the dashboard marks it (docs/dashboard.md, "Certainty").

A mark is a symbol (not colour alone: readable in grey and on a phone) and a text key of
``texts.py`` with the moment it refers to; the templates put the moment in local time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cabinet_agent.common.protocol import Certainty, SlotState

from ..fleet import SlotView
from ..presence import certainty_of

__all__ = ["CERTAIN", "Mark", "mark_of"]


@dataclass(frozen=True, slots=True)
class Mark:
    certainty: Certainty
    symbol: str  # "" for certain
    key: str  # text key; "" for certain
    since: datetime | None = None  # the moment the text names ("… seit {since}"), if any

    @property
    def shown(self) -> bool:
        return self.certainty is not Certainty.CERTAIN


CERTAIN: Final = Mark(Certainty.CERTAIN, "", "")
PROBABLE_SYMBOL: Final = "≈"
CANNOT_TELL_SYMBOL: Final = "?"


def mark_of(slot: SlotView) -> Mark:
    """*charged / probable*: not confirmed since the iPad may have left unseen; *empty / probable*:
    no sign of life (no top-up pulse) since its last draw; *present_idle / cannot_tell*: there,
    but whether it is full is unclear; otherwise *cannot_tell*: the hardware cannot judge it."""
    certainty = certainty_of(slot)
    if certainty is Certainty.CANNOT_TELL:
        key = "mark.idle_unclear" if slot.state is SlotState.PRESENT_IDLE else "mark.cannot_tell"
        return Mark(certainty, CANNOT_TELL_SYMBOL, key)
    if certainty is Certainty.PROBABLE:
        if slot.state is SlotState.CHARGED:
            key, since = "mark.unconfirmed", slot.unseen_since
        elif slot.state is SlotState.EMPTY:
            key, since = "mark.no_sign", slot.last_draw_at or slot.unseen_since
        else:
            key, since = "mark.probable", slot.unseen_since
        return Mark(certainty, PROBABLE_SYMBOL, key if since is not None else f"{key}.plain", since)
    return CERTAIN
