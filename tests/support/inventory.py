"""A fleet whose slots carry asset tags from an inventory, as the collector builds it: the tags
come from the inventory (server/assets.py), never from what a cabinet's birth claims."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from server.assets import AssetRegister
from server.fleet import Fleet
from server.inventory import Inventory
from server.org import Organisation

__all__ = ["register_with", "tagged_fleet"]


def register_with(tags: Mapping[tuple[str, str], Mapping[int, str]] | Organisation) -> AssetRegister:
    """A register over an in-memory inventory holding these tags ((site, cabinet) -> slot -> tag)
    or the organisation config's ``[[cabinets]] slots``."""
    if isinstance(tags, Organisation):
        return AssetRegister.from_org(tags)
    inventory = Inventory.in_memory(lambda: datetime.now(UTC))
    inventory.seed(tags, "test")
    return AssetRegister(inventory)


def tagged_fleet(tags: Mapping[tuple[str, str], Mapping[int, str]] | Organisation) -> Fleet:
    return register_with(tags).fleet()
