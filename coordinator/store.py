"""SQLite storage for the coordinator: hosts, profile history, events, policies, VMs.

One file, WAL journal, `synchronous=FULL`: a report the coordinator has
acknowledged is on disk before the reply leaves, so `kill -9` loses
nothing. The schema carries a version and migrates forward on open.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from cpucompat.agent.raw import RawCapture
from cpucompat.agent.rawjson import capture_from_json, capture_to_json

SCHEMA_VERSION = 5

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
    3: """
    ALTER TABLE hosts ADD COLUMN pruned_versions INTEGER NOT NULL DEFAULT 0
    """,
    # Which hosts (names or fnmatch patterns) an administrator admitted to which cluster.
    4: """
    CREATE TABLE admissions (
        cluster TEXT NOT NULL,
        pattern TEXT NOT NULL,
        admitted_at REAL NOT NULL,
        admitted_by TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (cluster, pattern)
    )
    """,
    # The libvirt CPU definition a VM booted with (`vm register --libvirt-xml`), one line.
    5: """
    ALTER TABLE vms ADD COLUMN cpu_definition TEXT
    """,
}


class StoreError(RuntimeError):
    """The database cannot be opened, is not cpucompat's, or is from a newer cpucompat."""


class StorageFault(StoreError):
    """Reading or writing the database failed at run time (disk full, damaged, I/O error).

    The servicers answer RESOURCE_EXHAUSTED when ``full`` (nothing more fits on the disk),
    UNAVAILABLE otherwise, and log one line; nothing half-written stays behind.
    """

    def __init__(self, message: str, full: bool = False) -> None:
        super().__init__(message)
        self.full = full


EXPECTED_TABLES = {
    "hosts": {"host_id", "cluster", "profile_version", "heartbeat_interval", "pruned_versions"},
    "profiles": {"id", "host_id", "fingerprint", "source", "raw"},
    "events": {"id", "time", "cluster", "host_id", "kind", "message", "details"},
    "policies": {"cluster", "action", "version"},
    "vms": {"name", "cluster", "requirement"},
    "admissions": {"cluster", "pattern", "admitted_at", "admitted_by"},
}


def pack_raw(doc: dict[str, Any]) -> bytes:
    """Raw leaves compress well (CPUs repeat each other); keep the file small."""
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def unpack_raw(blob: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(zlib.decompress(blob))
    return result


def pack_capture(capture: RawCapture) -> bytes:
    """A capture as stored: its leaves, and the dump file it was replayed from (if any)."""
    doc = capture_to_json(capture)
    if capture.origin:
        doc["origin"] = capture.origin
    return pack_raw(doc)


def unpack_capture(blob: bytes) -> RawCapture:
    doc = unpack_raw(blob)
    origin = doc.get("origin") if isinstance(doc, dict) else None
    return capture_from_json(doc, origin=origin if isinstance(origin, str) else None)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _describe(exc: sqlite3.Error) -> str:
    return _one_line(str(exc)) or type(exc).__name__


def _is_full(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_FULL") or "database or disk is full" in str(exc)


class Store:
    """A thread-safe handle on the coordinator's SQLite file."""

    def __init__(self, path: str | Path, durable: bool = True, create_folder: bool = False) -> None:
        """Open (or create) the database; ``create_folder`` only for the default location.

        A path given by an operator must name an existing folder: a mistyped --db must
        not create folders (as root, anywhere).
        """
        self.path = Path(path)
        self._lock_file: int | None = None
        if str(path) != ":memory:":
            self._check_path(create_folder)
            self._lock_file = self._take_lock()
        try:
            self._db = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None, timeout=30
            )
            self._db.row_factory = sqlite3.Row
            self._lock = threading.RLock()
            # Read-only checks first: a file that is not ours is left exactly as it was.
            self._check_integrity()
            self._check_not_foreign()
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledged report survives power loss. Only bulk loading that can
            # be redone (benchmark seeding) opens with durable=False.
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            self._check_schema()
        except (sqlite3.Error, StoreError) as exc:
            self._close_quietly()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(self._open_failure(exc)) from None

    def _check_path(self, create_folder: bool) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            if not create_folder:
                raise StoreError(
                    f"the folder of database {self.path} does not exist; create it first "
                    "or correct --db"
                )
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder for database {self.path}: {exc.strerror}; "
                    "check the path and permissions"
                ) from None
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"database {self.path} is not a regular file; give --db a file path")

    def _open_failure(self, exc: sqlite3.Error) -> str:
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return (
                f"database {self.path} is damaged or not an SQLite file ({_describe(exc)}); "
                "restore it from a backup or give --db another file"
            )
        if _is_full(exc):
            return f"database {self.path}: the disk is full ({_describe(exc)}); free space first"
        return f"cannot open database {self.path}: {_describe(exc)}; check the path and permissions"

    def _check_integrity(self) -> None:
        """Catch a damaged file at start, with one line, rather than on some later query."""
        rows = self._db.execute("PRAGMA quick_check(1)").fetchall()
        if rows and rows[0][0] != "ok":
            raise StoreError(
                f"database {self.path} is damaged ({_one_line(str(rows[0][0]))}); "
                "restore it from a backup"
            )

    def _check_not_foreign(self) -> None:
        """Tables without cpucompat's schema version: another program's database."""
        if self.schema_version() != 0:
            return
        tables = [
            row[0]
            for row in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        if tables:
            raise StoreError(
                f"database {self.path} is not a cpucompat database (it holds tables "
                f"{', '.join(tables[:5])}); give the coordinator its own --db"
            )

    def _check_tables_of(self, version: int) -> None:
        """Before migrating: a file at ``version`` holds every table that version created
        (a later migration altering a missing table would fail with SQLite's words)."""
        created = {
            name
            for v in range(1, version + 1)
            for name in re.findall(r"CREATE TABLE (\w+)", MIGRATIONS.get(v, ""))
        }
        have = {
            row[0]
            for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        missing = sorted(created - have)
        if missing:
            raise StoreError(
                f"database {self.path} is not a cpucompat database (schema version {version} "
                f"but no table {', '.join(missing)}); give the coordinator its own --db"
            )

    def _check_schema(self) -> None:
        """A file with cpucompat's version but not its tables is someone else's."""
        for table, columns in EXPECTED_TABLES.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            missing = columns - have
            if missing:
                raise StoreError(
                    f"database {self.path} is not a cpucompat database (table {table} lacks "
                    f"{', '.join(sorted(missing))}); give the coordinator its own --db"
                )

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

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            with suppress(sqlite3.Error):
                db.close()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    def close(self) -> None:
        with self._lock:
            self._close_quietly()

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
            self._check_tables_of(current)
            for version in range(current + 1, SCHEMA_VERSION + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in MIGRATIONS[version].split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={version}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise

    def fault(self, exc: sqlite3.Error) -> StorageFault:
        """The run-time failure ``exc`` as one line that names the database and the fix."""
        what = _describe(exc)
        if _is_full(exc):
            return StorageFault(
                f"the coordinator's database {self.path} cannot grow: the disk is full "
                f"({what}); free space on that volume",
                full=True,
            )
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return self.damaged(what)
        return StorageFault(f"the coordinator's database {self.path} failed: {what}")

    def damaged(self, what: str) -> StorageFault:
        return StorageFault(
            f"the coordinator's database {self.path} is damaged: {what}; restore it from a backup"
        )

    def _rollback(self) -> None:
        with suppress(sqlite3.Error):  # SQLite may have rolled back already (a full disk)
            self._db.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: everything in it lands together or not at all."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self.fault(exc) from None
            try:
                yield self._db
            except sqlite3.Error as exc:
                self._rollback()
                raise self.fault(exc) from None
            except BaseException:
                self._rollback()
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self.fault(exc) from None

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise self.fault(exc) from None


class FaultLog:
    """One log line per distinct fault per minute: a full disk must not flood the log."""

    def __init__(
        self, logger: logging.Logger, every: float = 60.0, level: int = logging.ERROR
    ) -> None:
        self.logger = logger
        self.level = level
        self.every = every
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def log(self, what: str, exc: BaseException) -> None:
        line = f"{what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        now = time.monotonic()
        with self._lock:
            last = self._seen.get(line)
            if last is not None and now - last[0] < self.every:
                self._seen[line] = (last[0], last[1] + 1)
                return
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen[line] = (now, 0)
        repeats = f" (also {last[1]} more times in the last minute)" if last and last[1] else ""
        self.logger.log(self.level, "%s%s", line, repeats)
