"""Which asset tag belongs to a slot, decided in one place: the inventory (``server/inventory``).

The agents carry no tags (and what an older one still claims is ignored): one cabinet must never
be able to write charge sessions, time series or alerts under another school's iPad, and one home
for a tag means it cannot disagree with itself. The organisation config's ``[[cabinets]] slots``
fill the inventory once (``Inventory.seed``); from then on the inventory holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from .fleet import Fleet, Observer
from .inventory import Inventory, Snapshot
from .org import Organisation

__all__ = ["AssetRegister", "changed_cabinets", "org_slots"]

_NONE: Mapping[int, str] = {}


def org_slots(org: Organisation) -> dict[tuple[str, str], Mapping[int, str]]:
    """The ``[[cabinets]] slots`` of the organisation config, per (site, cabinet)."""
    result: dict[tuple[str, str], Mapping[int, str]] = {}
    for cabinet in org.cabinets:
        if cabinet.slots:
            result.setdefault((cabinet.school, cabinet.id), dict(cabinet.slots))
    return result


def changed_cabinets(before: Snapshot, after: Snapshot) -> set[tuple[str, str]]:
    """The cabinets whose slots hold other asset tags in ``after`` than in ``before``."""
    keys = before.by_cabinet.keys() | after.by_cabinet.keys()
    return {key for key in keys if before.by_cabinet.get(key) != after.by_cabinet.get(key)}


class AssetRegister:
    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory

    @classmethod
    def from_org(cls, org: Organisation) -> AssetRegister:
        """An in-memory inventory filled from the organisation config (tests, tools)."""
        inventory = Inventory.in_memory(lambda: datetime.now(UTC))
        inventory.seed(org_slots(org), "server.toml")
        return cls(inventory)

    def fleet(self, observer: Observer | None = None) -> Fleet:
        """A fleet whose slots carry this register's tags, and follow every change of them."""
        fleet = Fleet(self.tags, observer)

        def follow(before: Snapshot, after: Snapshot) -> None:
            fleet.retag(changed_cabinets(before, after))

        self.inventory.listen(follow)
        return fleet

    @property
    def revision(self) -> int:
        """Changes whenever a tag moves: caches of tags compare it."""
        return self.inventory.snapshot().revision

    def tag(self, site: str, cabinet: str, slot: int) -> str | None:
        """The asset tag of the iPad that lives in this slot, if the inventory names one."""
        return self.inventory.snapshot().by_cabinet.get((site, cabinet), _NONE).get(slot)

    def tags(self, site: str, cabinet: str) -> Mapping[int, str]:
        """Slot number -> asset tag for every slot of the cabinet the inventory fills."""
        return self.inventory.snapshot().by_cabinet.get((site, cabinet), _NONE)
