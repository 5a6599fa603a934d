"""What the server can say about an iPad's presence, from the certainty and evidence the agent sends.

The agent says how sure it is of each slot (``Certainty``, docs/classification.md). Slots whose iPad
the cabinet cannot confirm — a full iPad on a cabinet that only measures power draws (almost)
nothing, so it may have been taken out unseen — raise no alert: the dashboard and the daily digest
list them as "not confirmed since …" until a top-up pulse proves the iPad there, or the evidence
window passes without one (then the agent says ``empty``, and "not returned" may fire).

Agents before protocol revision 2 send no certainty: their states are taken as they come (the old
meaning), except ``unknown``, which never was a verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cabinet_agent.common.protocol import Certainty, SlotState
from server.fleet import CabinetView, SlotView
from server.org import Organisation

__all__ = [
    "UnconfirmedSlot",
    "blind_to_full_removal",
    "certainty_of",
    "judges_slots",
    "unconfirmed",
    "unconfirmed_for_site",
]


@dataclass(frozen=True, slots=True)
class UnconfirmedSlot:
    site: str
    cabinet: str
    slot: int
    asset_tag: str | None
    unseen_since: datetime | None
    last_draw_at: datetime | None


def certainty_of(slot: SlotView) -> Certainty:
    """The slot's certainty; for an older agent's slot, what its state meant then."""
    if slot.certainty is not None:
        return slot.certainty
    return Certainty.CANNOT_TELL if slot.state is SlotState.UNKNOWN else Certainty.CERTAIN


def blind_to_full_removal(cabinet: CabinetView) -> bool | None:
    """True when the cabinet measures slot power but has no presence inputs: it cannot see a full
    iPad being taken out (only the absence of top-up pulses tells, after the evidence window).
    None when the agent did not say what it senses (before protocol revision 2)."""
    sensing = cabinet.sensing
    if sensing is None:
        return None
    return sensing.slot_power and not sensing.presence


def judges_slots(cabinet: CabinetView) -> bool:
    """False for a cabinet without slot meters (a door contact only): no slot can be judged."""
    return cabinet.sensing is None or cabinet.sensing.slot_power


def unconfirmed(cabinet: CabinetView) -> list[UnconfirmedSlot]:
    """The cabinet's charged slots that may have been emptied unseen (``probable``)."""
    return [UnconfirmedSlot(cabinet.site, cabinet.cabinet, slot.slot, slot.asset_tag,
                            slot.unseen_since, slot.last_draw_at)
            for slot in cabinet.slots
            if slot.state is SlotState.CHARGED and slot.certainty is Certainty.PROBABLE]


def unconfirmed_for_site(cabinets: Iterable[CabinetView], org: Organisation,
                         site: str) -> list[UnconfirmedSlot]:
    """Every unconfirmed slot of one school (the slots carry the inventory's asset tags)."""
    result = []
    for cabinet in cabinets:
        if cabinet.site == site:
            result.extend(unconfirmed(cabinet))
    return result
