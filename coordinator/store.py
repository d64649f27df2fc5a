"""SQLite storage for the coordinator: hosts, profile history, events, policies, VMs.

One file, WAL journal, `synchronous=FULL`: a report the coordinator has
acknowledged is on disk before the reply leaves, so `kill -9` loses
nothing. The schema carries a version and migrates forward on open.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2

# Each entry upgrades the schema from version N-1 to N.
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE hosts (
        host_id TEXT PRIMARY KEY,
        cluster TEXT NOT NULL,
        agent_address TEXT NOT NULL DEFAULT '',
        agent_version TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        replayed INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        agent_fingerprint TEXT NOT NULL DEFAULT '',
        profile_version INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        heartbeat_interval REAL NOT NULL
    );
    CREATE INDEX hosts_cluster ON hosts (cluster);
    CREATE TABLE profiles (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        host_id TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        fingerprint TEXT NOT NULL,
        source TEXT NOT NULL,
        raw BLOB NOT NULL,
        features TEXT NOT NULL,
        gained TEXT NOT NULL,
        lost TEXT NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE INDEX profiles_host ON profiles (host_id, id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        cluster TEXT NOT NULL,
        host_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        details TEXT NOT NULL
    );
    CREATE INDEX events_cluster_time ON events (cluster, time);
    """,
    2: """
    CREATE TABLE policies (
        cluster TEXT PRIMARY KEY,
        action TEXT NOT NULL,
        computed_action TEXT NOT NULL,
        pinned_action TEXT,
        reason TEXT NOT NULL,
        details TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE vms (
        name TEXT PRIMARY KEY,
        cluster TEXT NOT NULL,
        mode TEXT NOT NULL,
        boot_host TEXT,
        baseline TEXT,
        requirement TEXT NOT NULL,
        registered_at REAL NOT NULL,
        booted_at REAL NOT NULL,
        current_host TEXT
    );
    CREATE INDEX vms_cluster ON vms (cluster);
    """,
}


class StoreError(RuntimeError):
    """The database cannot be opened or is from a newer cpucompat."""


def pack_raw(doc: dict[str, Any]) -> bytes:
    """Raw leaves compress well (CPUs repeat each other); keep the file small."""
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def unpack_raw(blob: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(zlib.decompress(blob))
    return result


class Store:
    """A thread-safe handle on the coordinator's SQLite file."""

    def __init__(self, path: str | Path, durable: bool = True) -> None:
        self.path = Path(path)
        self._lock_file: int | None = None
        if str(path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder for database {path}: {exc.strerror}; "
                    "check the path and permissions"
                ) from None
            self._lock_file = self._take_lock()
        try:
            self._db = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None, timeout=30
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledged report survives power loss. Only bulk loading that can
            # be redone (benchmark seeding) opens with durable=False.
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            if self._lock_file is not None:
                os.close(self._lock_file)
            raise StoreError(
                f"cannot open database {path}: {exc}; check the path and permissions"
            ) from None
        self._lock = threading.RLock()
        self._migrate()

    def _take_lock(self) -> int:
        """One coordinator per database: a second one would judge hosts from a stale copy."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open lock file {lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(
                f"database {self.path} is in use by another coordinator (lock {lock_path}); "
                "stop it first or give this one its own --db"
            ) from None
        return fd

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._lock_file is not None:
                os.close(self._lock_file)
                self._lock_file = None

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._lock:
            current = self.schema_version()
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"database {self.path} has schema version {current}, newer than this "
                    f"cpucompat ({SCHEMA_VERSION}); upgrade cpucompat"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in MIGRATIONS[version].split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={version}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: everything in it lands together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db
