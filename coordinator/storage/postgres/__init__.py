"""The PostgreSQL backend (``--db postgresql://...``), for fleets that outgrow one SQLite file."""

from __future__ import annotations

from .store import EXPECTED_TABLES, MIGRATIONS, SCHEMA_VERSION, PostgresStorage

__all__ = ["EXPECTED_TABLES", "MIGRATIONS", "SCHEMA_VERSION", "PostgresStorage"]
