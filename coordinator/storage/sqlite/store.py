"""The SQLite backend: one file, WAL journal, `synchronous=FULL`, one coordinator per file.

A report the coordinator has acknowledged is on disk before the reply leaves, so
`kill -9` loses nothing. The schema version is SQLite's ``user_version``; the files in
``migrations/`` bring an older database forward on open.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .. import migrations
from ..errors import StorageFault, StoreError
from .repositories import SqliteUnitOfWork

MIGRATIONS = migrations.load(f"{__package__}.migrations")
SCHEMA_VERSION = MIGRATIONS[-1].version

EXPECTED_TABLES = {
    "hosts": {"host_id", "cluster", "profile_version", "heartbeat_interval", "pruned_versions"},
    "profiles": {"id", "host_id", "fingerprint", "source", "raw"},
    "events": {"id", "time", "cluster", "host_id", "kind", "message", "details"},
    "policies": {"cluster", "action", "version"},
    "vms": {"name", "cluster", "requirement"},
    "admissions": {"cluster", "pattern", "admitted_at", "admitted_by"},
    "leaf_classes": {"digest", "leaves"},
    "profile_leaf_classes": {"profile_id", "digest"},
}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _describe(exc: sqlite3.Error) -> str:
    return _one_line(str(exc)) or type(exc).__name__


def _is_full(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_FULL") or "database or disk is full" in str(exc)


class SqliteStorage:
    """A thread-safe handle on the coordinator's SQLite file (the embedded default backend)."""

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
            with self._lock:
                self._check_tables_of(self.schema_version())
                migrations.migrate(self, MIGRATIONS, f"database {self.path}")
            self._check_schema()
        except (sqlite3.Error, StoreError) as exc:
            self._close_quietly()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(self._open_failure(exc)) from None

    # ---- opening -----------------------------------------------------------------------

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
            for mig in MIGRATIONS[:version]
            for statement in mig.statements
            for name in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", statement)
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

    # ---- several coordinators: never on one file (the lock file refuses a second) ---------

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        """Nothing to hear: this coordinator is the file's only writer."""

    def holds_lease(self, name: str) -> bool:
        return True

    # ---- migrations (the runner's Schema) --------------------------------------------------

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def apply(self, migration: migrations.Migration) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in migration.statements:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={int(migration.version)}")
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    # ---- faults ------------------------------------------------------------------------

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
        # Locked, read-only, an I/O error: the file could not be written at all.
        return StorageFault(
            f"the coordinator's database {self.path} failed: {what}",
            outage=isinstance(exc, sqlite3.OperationalError),
        )

    def damaged(self, what: str) -> StorageFault:
        return StorageFault(
            f"the coordinator's database {self.path} is damaged: {what}; restore it from a backup",
            outage=False,
        )

    def _rollback(self) -> None:
        with suppress(sqlite3.Error):  # SQLite may have rolled back already (a full disk)
            self._db.execute("ROLLBACK")

    # ---- transactions ------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work on the raw connection (this backend's own tools and tests)."""
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

    @contextmanager
    def unit_of_work(self) -> Iterator[SqliteUnitOfWork]:
        """The services' transaction: commit at exit, rollback on exception, then the hooks."""
        with self.transaction() as db:
            uow = SqliteUnitOfWork(db)
            yield uow
        for hook in uow.hooks:
            hook()

    @contextmanager
    def read(self) -> Iterator[SqliteUnitOfWork]:
        with self.reading() as db:
            yield SqliteUnitOfWork(db)
