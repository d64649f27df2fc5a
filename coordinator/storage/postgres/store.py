"""The PostgreSQL backend (``--db postgresql://...``): the database operators already run.

One connection per coordinator, its transactions taken in turn (as the SQLite backend
does); a commit is acknowledged only once PostgreSQL has it durably (the server's
``synchronous_commit``, on by default), so ``kill -9`` of the coordinator loses no
acknowledged report. The schema version is kept in ``cpucompat_schema``; migrations run
under an advisory lock so coordinators starting together migrate once. A broken
connection (the server restarted, the network failed) is reopened by the next unit of
work; until then each one fails with a StorageFault, as a full disk does.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

from .. import migrations
from ..errors import StorageFault, StoreError
from .repositories import PgUnitOfWork
from .url import connection_defaults, password_of, redact

MIGRATIONS = migrations.load(f"{__package__}.migrations")
SCHEMA_VERSION = MIGRATIONS[-1].version

LOCK_MIGRATE = 0x6370753300000002  # session advisory lock held while migrating
LOCK_CLASS_LEASE = 0x63707534  # session advisory locks: once-per-database jobs (the sweep)
CHANNEL = "cpucompat"  # LISTEN/NOTIFY channel of the coordinators' announcements
CONNECT_TIMEOUT = 10  # seconds to wait for the LISTEN connection at start

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

# SQLSTATE classes: 53100 disk_full; 08 connection exceptions; 57P0x the server shut down.
DISK_FULL = "53100"
log = logging.getLogger("cpucompat.coordinator.storage.postgres")
_CORRUPT = {"XX001", "XX002"}  # data_corrupted, index_corrupted


class PostgresStorage:
    """A thread-safe handle on the coordinator's PostgreSQL database."""

    def __init__(self, url: str, durable: bool = True) -> None:
        self.url = url
        self.name = redact(url)
        self._secret = password_of(url)
        self._durable = durable
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[DictRow] | None = None
        # Several coordinators: who we are in announcements, who listens, which leases we hold.
        self.instance = uuid.uuid4().hex
        self._listeners: list[Callable[[str, str], None]] = []
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._lease_lock = threading.Lock()
        self._lease_conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._leases: set[str] = set()
        try:
            self._conn = self._connect()
            self._check_not_foreign()
            with self._lock:
                self._conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_MIGRATE,))
                try:
                    self._check_tables_of(self.schema_version())
                    migrations.migrate(self, MIGRATIONS, f"database {self.name}")
                finally:
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_MIGRATE,))
            self._check_schema()
        except psycopg.Error as exc:
            self._close_quietly()
            raise StoreError(
                f"cannot use database {self.name}: {self._describe(exc)}; check the server, "
                "the URL and the user's rights"
            ) from None
        except StoreError:
            self._close_quietly()
            raise

    # ---- opening -----------------------------------------------------------------------

    def _extra(self) -> dict[str, Any]:
        """libpq's keepalive and timeout options the URL leaves unset (`url.py`)."""
        return connection_defaults(self.url)

    def _connect(self) -> psycopg.Connection[DictRow]:
        try:
            conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row, **self._extra())
        except psycopg.OperationalError as exc:
            raise StoreError(
                f"cannot reach PostgreSQL database {self.name}: {self._describe(exc)}; start "
                "the server or correct --db"
            ) from None
        except psycopg.ProgrammingError as exc:  # a malformed URL
            raise StoreError(
                f"invalid PostgreSQL URL {self.name}: {self._describe(exc)}; correct --db"
            ) from None
        if not self._durable:
            # Bulk loading that can be redone (benchmark seeding) only.
            conn.execute("SET synchronous_commit = off")
        return conn

    def _tables(self) -> set[str]:
        assert self._conn is not None
        return {
            row["table_name"]
            for row in self._conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        }

    def _check_not_foreign(self) -> None:
        tables = self._tables()
        if tables and "cpucompat_schema" not in tables:
            raise StoreError(
                f"database {self.name} is not a cpucompat database (it holds tables "
                f"{', '.join(sorted(tables)[:5])}); give the coordinator its own database"
            )

    def _check_tables_of(self, version: int) -> None:
        created = {
            name
            for mig in MIGRATIONS[:version]
            for statement in mig.statements
            for name in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", statement)
        }
        missing = sorted(created - self._tables())
        if missing:
            raise StoreError(
                f"database {self.name} is not a cpucompat database (schema version {version} "
                f"but no table {', '.join(missing)}); give the coordinator its own database"
            )

    def _check_schema(self) -> None:
        assert self._conn is not None
        for table, columns in EXPECTED_TABLES.items():
            have = {
                row["column_name"]
                for row in self._conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = %s",
                    (table,),
                )
            }
            missing = columns - have
            if missing:
                raise StoreError(
                    f"database {self.name} is not a cpucompat database (table {table} lacks "
                    f"{', '.join(sorted(missing))}); give the coordinator its own database"
                )

    def _close_quietly(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None and self._listener.is_alive():
            self._listener.join(timeout=5)
        with self._lock:
            self._close_quietly()
        with self._lease_lock:
            self._drop_lease()

    # ---- several coordinators: announcements and leases ----------------------------------

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        """Hear the other coordinators' commits (LISTEN) on a connection of its own."""
        self._listeners.append(listener)
        if self._listener is None:
            self._listener = threading.Thread(
                target=self._listen_loop, name="postgres-listen", daemon=True
            )
            self._listener.start()
            self._listening.wait(timeout=CONNECT_TIMEOUT)

    def _listen_loop(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, **self._extra()) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    backoff = 0.1
                    # What was committed before we listened (since the services loaded their
                    # mirrors, or while the connection was down) was not announced to us.
                    # Reloaded until it succeeds: after an outage the services' own
                    # connection may still be the broken one and fail the first reload.
                    # A failed refresh of one key too: then everything is reloaded.
                    reloaded = self._dispatch("*", "")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            reloaded = self._heard(note.payload) and reloaded
                        if not reloaded:
                            reloaded = self._dispatch("*", "")
            except psycopg.Error as exc:
                self._listening.set()
                log.warning(
                    "listening to database %s failed (%s); retrying", self.name, self._describe(exc)
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _heard(self, payload: str) -> bool:
        """Refresh what an announcement names; False when a refresh failed."""
        try:
            note = json.loads(payload)
            if note.get("from") == self.instance:
                return True  # this coordinator's own commit: its hooks already refreshed it
            return self._dispatch(str(note["topic"]), str(note["key"]))
        except (ValueError, KeyError, AttributeError):
            log.warning("ignored a malformed announcement on database %s", self.name)
            return True

    def _dispatch(self, topic: str, key: str) -> bool:
        """Tell every listener; whether each refreshed without an error."""
        done = True
        for listener in self._listeners:
            try:
                listener(topic, key)
            except Exception:  # one failing refresh must not deafen the coordinator
                log.exception("refreshing after %s %r from another coordinator failed", topic, key)
                done = False
        return done

    def holds_lease(self, name: str) -> bool:
        """A session advisory lock on a connection of its own: it ends with the holder's
        session, so a coordinator killed with -9 frees it as soon as the server notices.
        The server unreachable: the lease is dropped and a StorageFault raised (an outage)."""
        with self._lease_lock:
            try:
                if self._lease_conn is None or self._lease_conn.closed or self._lease_conn.broken:
                    self._drop_lease()
                    self._lease_conn = psycopg.connect(self.url, autocommit=True, **self._extra())
                conn = self._lease_conn
                if name in self._leases:
                    conn.execute("SELECT 1")  # still our session: the lock is still ours
                    return True
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS_LEASE, name)
                ).fetchone()
                if row is not None and row[0]:
                    self._leases.add(name)
                    return True
                return False
            except psycopg.Error as exc:
                self._drop_lease()
                raise self.fault(exc) from None

    def _drop_lease(self) -> None:
        self._leases.clear()
        if self._lease_conn is not None:
            with suppress(psycopg.Error):
                if not self._lease_conn.broken:
                    # Handed over at once; closing alone frees it only once the server's
                    # backend has noticed the session end.
                    self._lease_conn.execute("SELECT pg_advisory_unlock_all()")
                self._lease_conn.close()
            self._lease_conn = None

    # ---- migrations (the runner's Schema) --------------------------------------------------

    def schema_version(self) -> int:
        assert self._conn is not None
        if "cpucompat_schema" not in self._tables():
            return 0
        row = self._conn.execute("SELECT max(version) AS v FROM cpucompat_schema").fetchone()
        return 0 if row is None or row["v"] is None else int(row["v"])

    def apply(self, migration: migrations.Migration) -> None:
        assert self._conn is not None
        with self._conn.transaction():
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS cpucompat_schema (version integer NOT NULL)"
            )
            for statement in migration.statements:
                self._conn.execute(statement.encode())  # a file's text, not a query template
            self._conn.execute("DELETE FROM cpucompat_schema")
            self._conn.execute(
                "INSERT INTO cpucompat_schema (version) VALUES (%s)", (migration.version,)
            )

    # ---- faults ------------------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        """The driver's message on one line, without the password should it echo one."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def fault(self, exc: psycopg.Error) -> StorageFault:
        """The run-time failure ``exc`` as one line that names the database and the fix."""
        what = self._describe(exc)
        state = getattr(exc, "sqlstate", None) or ""
        if state == DISK_FULL:
            return StorageFault(
                f"the coordinator's database {self.name} cannot grow: the server's disk is "
                f"full ({what}); free space on the PostgreSQL server",
                full=True,
            )
        if state in _CORRUPT:
            return self.damaged(what)
        if isinstance(exc, psycopg.OperationalError) and not state.startswith(("23", "40")):
            return StorageFault(
                f"the coordinator's database {self.name} is unreachable ({what}); check the "
                "PostgreSQL server and the network to it"
            )
        # A conflict (deadlock, serialization, constraint) or a bad statement: this change's.
        return StorageFault(f"the coordinator's database {self.name} failed: {what}", outage=False)

    def damaged(self, what: str) -> StorageFault:
        return StorageFault(
            f"the coordinator's database {self.name} is damaged: {what}; restore it from a backup",
            outage=False,
        )

    # ---- transactions ------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[DictRow]:
        """The open connection, reopened when the last one broke."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._close_quietly()
        try:
            self._conn = self._connect()
        except StoreError as exc:
            raise StorageFault(str(exc)) from None
        return self._conn

    @contextmanager
    def _transaction(self, *, read_only: bool) -> Iterator[psycopg.Connection[DictRow]]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    if read_only:
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    yield conn
            except psycopg.Error as exc:
                raise self.fault(exc) from None

    @contextmanager
    def unit_of_work(self) -> Iterator[PgUnitOfWork]:
        """The services' transaction: commit at exit, rollback on exception, then the hooks."""
        with self._transaction(read_only=False) as conn:
            uow = PgUnitOfWork(conn)
            yield uow
            uow.events.flush()
            # NOTIFY is transactional: the other coordinators hear it exactly when it commits.
            # One statement for them all (a group commit announces hundreds of hosts).
            payloads = [
                json.dumps({"from": self.instance, "topic": topic, "key": key})
                for topic, key in sorted(uow.announced)
            ]
            if payloads:
                conn.execute(
                    "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) WITH ORDINALITY AS n(p, i) "
                    "ORDER BY i",
                    (CHANNEL, payloads),
                )
        for hook in uow.hooks:
            hook()

    @contextmanager
    def read(self) -> Iterator[PgUnitOfWork]:
        with self._transaction(read_only=True) as conn:
            yield PgUnitOfWork(conn, writable=False)
