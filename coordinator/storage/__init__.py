"""The storage seam: repositories and a unit of work (``interface``), one package per backend.

Services import only ``interface``, ``errors`` and ``blobs`` from here; ``open_storage``
picks the backend for a ``--db`` value.
"""

from __future__ import annotations

from pathlib import Path

from .errors import StorageFault, StoreError
from .interface import Storage, UnitOfWork


def open_storage(db: str | Path, *, durable: bool = True, create_folder: bool = False) -> Storage:
    """The database named by ``--db``: an SQLite file (the only backend so far)."""
    from .sqlite import SqliteStorage

    return SqliteStorage(db, durable=durable, create_folder=create_folder)


__all__ = ["Storage", "StorageFault", "StoreError", "UnitOfWork", "open_storage"]
