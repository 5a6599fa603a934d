"""The durable history (issue 17): what each slot and cabinet was, and when, kept in the store so
that history pages and school reports survive restarts. ``recorder`` writes it from the fleet's
change feed, ``queries`` reads it back, ``rollup`` sums each day up, ``reports`` adds the days up
for a report, ``source`` is what the dashboard asks."""

from .queries import CabinetChange, SlotChange, cabinet_changes_between, slot_changes_between
from .recorder import HistoryRecorder

__all__ = ["CabinetChange", "HistoryRecorder", "SlotChange", "cabinet_changes_between",
           "slot_changes_between"]
