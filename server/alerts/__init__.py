"""Alerts: rules evaluated against fleet state by a pure engine, kept in a store."""

from .engine import AlertEngine
from .model import Alert, AlertState, fingerprint
from .rules import CabinetOffline, Finding, Rule
from .state import StoredState
from .store import AlertStore

__all__ = [
    "Alert",
    "AlertEngine",
    "AlertState",
    "AlertStore",
    "CabinetOffline",
    "Finding",
    "Rule",
    "StoredState",
    "fingerprint",
]
