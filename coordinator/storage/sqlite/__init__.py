"""The SQLite backend, the coordinator's embedded default."""

from __future__ import annotations

from .store import EXPECTED_TABLES, MIGRATIONS, SCHEMA_VERSION, SqliteStorage

__all__ = ["EXPECTED_TABLES", "MIGRATIONS", "SCHEMA_VERSION", "SqliteStorage"]
