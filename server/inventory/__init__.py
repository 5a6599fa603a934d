"""The district's iPads: the single home of asset tags (issue 16).

An iPad is its asset tag (and serial, when known); where it lives is data that changes: a
technician places it in a slot, an MDM export (``mdm_csv.py``) brings tags, serials and names. The
agents carry no tags; every surface asks ``server.assets.AssetRegister``, which reads this.
"""

from .model import InventoryError, IPad, Move, Place, Snapshot
from .report import error_text, report_lines
from .store import ImportReport, Inventory

__all__ = ["IPad", "ImportReport", "Inventory", "InventoryError", "Move", "Place", "Snapshot",
           "error_text", "report_lines"]
