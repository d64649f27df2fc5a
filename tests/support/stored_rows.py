"""What a coordinator's SQLite database holds, for tests that assert nothing was stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

HEARTBEAT_COLUMNS = frozenset({"last_seen"})
"""Written by every heartbeat: agents keep running while a test compares."""


def stored_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (read-only), heartbeat times left out."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in tables:
            cursor = conn.execute(f"SELECT * FROM {table} ORDER BY 1")
            names = [d[0] for d in cursor.description]
            keep = [i for i, n in enumerate(names) if n not in HEARTBEAT_COLUMNS]
            out[table] = [tuple(row[i] for i in keep) for row in cursor.fetchall()]
    return out
