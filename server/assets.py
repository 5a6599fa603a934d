"""Which asset tag belongs to a slot, decided in one place.

The organisation config (``[[cabinets]] slots = { 1 = "GS-PARK-0001" }``) is the register: where it
names a slot's iPad, that name holds, whatever the agent says. An agent's own claim (its birth and
state messages, its sessions) counts only for a slot the register says nothing about, and only when
the register does not give that tag to another slot: otherwise one cabinet could write charge
sessions, time series and alerts under another school's iPad.
"""

from __future__ import annotations

from collections.abc import Mapping

from .org import Organisation

__all__ = ["AssetRegister"]

SlotKey = tuple[str, str, int]  # (site, cabinet, slot)


class AssetRegister:
    def __init__(self, org: Organisation) -> None:
        self._cabinets: dict[tuple[str, str], dict[int, str]] = {}
        self._owner: dict[str, SlotKey] = {}
        for cabinet in org.cabinets:
            key = (cabinet.school, cabinet.id)
            if key in self._cabinets:
                continue  # the organisation's validator refuses duplicates; first one wins
            self._cabinets[key] = dict(cabinet.slots)
            for slot, tag in cabinet.slots.items():
                self._owner.setdefault(tag, (cabinet.school, cabinet.id, slot))

    def tag(self, site: str, cabinet: str, slot: int, claimed: str | None) -> str | None:
        """The asset tag of this slot: the register's, else the claim unless it is another's."""
        registered = self._cabinets.get((site, cabinet))
        if registered is not None and slot in registered:
            return registered[slot]
        if not claimed:
            return None
        owner = self._owner.get(claimed)
        return claimed if owner is None or owner == (site, cabinet, slot) else None

    def tags(self, site: str, cabinet: str, claimed: Mapping[int, str]) -> Mapping[int, str]:
        """``tag`` for every slot the agent claims a tag for, plus every slot the register names."""
        registered = self._cabinets.get((site, cabinet))
        if registered is None and not any(tag in self._owner for tag in claimed.values()):
            return claimed  # the usual case of an unregistered cabinet: its claims stand
        result: dict[int, str] = {}
        for slot, tag in claimed.items():
            decided = self.tag(site, cabinet, slot, tag)
            if decided is not None:
                result[slot] = decided
        if registered:
            result.update(registered)
        return result
