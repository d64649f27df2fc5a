"""The storage seam: repositories and a unit of work (``interface``), one package per backend.

Services import only ``interface``, ``errors`` and ``blobs`` from here; ``open_storage``
picks the backend for a ``--db`` value by its form: a ``postgresql://`` (or
``postgres://``) URL opens PostgreSQL, anything else is an SQLite file.
"""

from __future__ import annotations

from pathlib import Path

from .errors import StorageFault, StoreError
from .interface import Storage, UnitOfWork

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str | Path) -> bool:
    return isinstance(db, str) and db.startswith(POSTGRES_SCHEMES)


def describe(db: str | Path) -> str:
    """``--db`` as errors and logs may show it: a URL without its password."""
    if is_postgres(db):
        from .postgres.url import redact

        return redact(str(db))
    return str(db)


def open_storage(db: str | Path, *, durable: bool = True, create_folder: bool = False) -> Storage:
    """The database named by ``--db``: a PostgreSQL URL, or an SQLite file."""
    if is_postgres(db):
        try:
            from .postgres import PostgresStorage
        except ImportError as exc:
            raise StoreError(
                f"--db {describe(db)} needs the PostgreSQL driver, which is not installed "
                f"({exc.name or exc}); pip install 'cpucompat[postgres]'"
            ) from None
        return PostgresStorage(str(db), durable=durable)
    from .sqlite import SqliteStorage

    return SqliteStorage(db, durable=durable, create_folder=create_folder)


__all__ = ["Storage", "StorageFault", "StoreError", "UnitOfWork", "describe", "open_storage"]
