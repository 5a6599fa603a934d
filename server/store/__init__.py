"""The server's state store: one schema (``schema.py``), versioned migrations (Alembic,
``migrations/``), opened in one place (``engine.py``).

SQLite in the ``[state] dir`` by default (embedded, zero setup), in memory without one. The
inventory is its first tenant; alerts, users, sessions and the notification queue move here with
issue 18, each as a migration.
"""

from .engine import DB_FILE, StoreError, open_store

__all__ = ["DB_FILE", "StoreError", "open_store"]
