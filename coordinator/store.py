"""The coordinator's database, as the code before the storage seam named it.

Kept so existing imports work: ``Store`` is the SQLite backend
(``storage.sqlite.SqliteStorage``); services take a ``storage.interface.Storage``.
"""

from __future__ import annotations

from .faultlog import FaultLog
from .storage.blobs import pack_capture, pack_raw, unpack_capture, unpack_raw
from .storage.errors import StorageFault, StoreError
from .storage.sqlite import EXPECTED_TABLES, SCHEMA_VERSION
from .storage.sqlite import SqliteStorage as Store

__all__ = [
    "EXPECTED_TABLES",
    "SCHEMA_VERSION",
    "FaultLog",
    "StorageFault",
    "Store",
    "StoreError",
    "pack_capture",
    "pack_raw",
    "unpack_capture",
    "unpack_raw",
]
