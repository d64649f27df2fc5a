"""The PostgreSQL repositories: the shared ones (`..sql_common`) in PostgreSQL's dialect.

Concurrent writers (several coordinators on one database) are expected here, so the
statements that read-modify-write take row or advisory locks that SQLite's
``BEGIN IMMEDIATE`` makes unnecessary; values cross the seam exactly as the SQLite
repositories return them (JSON columns are text, parsed here).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg.rows import DictRow

from ..interface import PolicyRow
from ..sql_common import (
    INSERT_EVENTS,
    EventValues,
    SqlAdmissions,
    SqlBaselinePins,
    SqlEvents,
    SqlHosts,
    SqlPolicies,
    SqlProfiles,
    SqlRepository,
    SqlVms,
)

# Advisory lock keys (pg_advisory_xact_lock(class, key)): one class per kind of thing locked.
LOCK_CLASS_HOST = 0x63707531  # a host id, while a report or status change rewrites it
LOCK_CLASS_POLICY = 0x63707532  # a cluster's policy, while it is recomputed
LOCK_EVENTS = 0x6370753300000001  # the event log's tail: ids become visible in order

Connection = psycopg.Connection[DictRow]


def _placeholders(sql: str) -> str:
    """A shared statement with psycopg's placeholders (``?`` -> ``%s``): a fraction of a
    microsecond beside the round trip, so it is not kept."""
    return sql.replace("?", "%s")


class PgSql:
    """A psycopg connection as the shared repositories use it (`sql_common.Sql`)."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def execute(
        self, sql: str, parameters: Sequence[Any] | None = None, /
    ) -> psycopg.Cursor[DictRow]:
        return self.db.execute(_placeholders(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> None:
        with self.db.cursor() as cur:
            cur.executemany(_placeholders(sql), parameters)


class PgRepository(SqlRepository):
    LOCK_CLASS: int | None = None  # the advisory lock class of `_lock`'s keys, if it locks

    @staticmethod
    def _action(value: int | None) -> int | None:
        return None if value is None else int(value)

    def _lock(self, key: str) -> None:
        """Until commit: one writer of this key's row, stored yet or not (the advisory lock
        also covers a row not stored yet: there is nothing to lock FOR UPDATE)."""
        assert self.LOCK_CLASS is not None, f"{type(self).__name__} has no lock class"
        self.db.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (self.LOCK_CLASS, key))

    def _for_update(self, key: str) -> str:
        if not self.writable:  # a read() takes no lock: it writes nothing
            return ""
        self._lock(key)
        return " FOR UPDATE"


class PgHosts(PgRepository, SqlHosts):
    LOCK_CLASS = LOCK_CLASS_HOST


class PgProfiles(PgRepository, SqlProfiles):
    # Another coordinator may store the same class at once: the second insert waits for
    # the first and then does nothing.
    INSERT_LEAF_CLASSES = (
        "INSERT INTO leaf_classes (digest, leaves) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING"
    )
    NOT_KEPT = "id IS DISTINCT FROM ?::bigint"

    def delete(self, versions: Iterable[int]) -> None:
        numbers = list(versions)
        if numbers:
            digests = [
                row["digest"]
                for row in self.db.execute(
                    "DELETE FROM profile_leaf_classes WHERE profile_id = ANY(?) RETURNING digest",
                    (numbers,),
                ).fetchall()
            ]
            self.db.execute("DELETE FROM profiles WHERE id = ANY(?)", (numbers,))
            # A class goes with the last version that refers to it: storage stays bounded.
            # A version another coordinator adds at once keeps it (the foreign key fails
            # this transaction, which the agent's next report repeats).
            if digests:
                self.db.execute(
                    "DELETE FROM leaf_classes c WHERE c.digest = ANY(?) AND NOT EXISTS "
                    "(SELECT 1 FROM profile_leaf_classes p WHERE p.digest = c.digest)",
                    (sorted(set(digests)),),
                )


class PgEvents(PgRepository, SqlEvents):
    def __init__(self, db: PgSql) -> None:
        super().__init__(db)
        self.pending: list[EventValues] = []

    def _insert(self, values: EventValues) -> None:
        # Ids are the events list's paging cursor: a reader must never see id N+1 before N.
        # An identity value is taken at insert but visible at commit, so events are
        # inserted at the end of the unit of work (flush), under a lock held to commit.
        self.pending.append(values)

    def flush(self) -> None:
        """Insert the pending events; last in the unit of work, so the events lock is always
        the last lock a writer takes (no lock-order cycle with hosts or policies)."""
        if not self.pending:
            return
        self.db.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_EVENTS,))
        self.db.executemany(INSERT_EVENTS, self.pending)
        self.pending.clear()


class PgPolicies(PgRepository, SqlPolicies):
    LOCK_CLASS = LOCK_CLASS_POLICY

    def set_pin(
        self, cluster: str, pinned: int | None, pin_reason: str, *, initial: PolicyRow
    ) -> None:
        # The details are merged here, under the cluster's lock, so they stay the same
        # sorted JSON text the SQLite backend keeps (jsonb would reorder the keys).
        self._lock(cluster)
        row = self.db.execute(
            "SELECT details FROM policies WHERE cluster = ? FOR UPDATE", (cluster,)
        ).fetchone()
        if row is None:
            self.put(
                PolicyRow(
                    cluster,
                    initial.action,
                    initial.computed_action,
                    pinned,
                    initial.reason,
                    {**initial.details, "pin_reason": pin_reason},
                    initial.version,
                    initial.updated_at,
                )
            )
            return
        details = {**json.loads(row["details"]), "pin_reason": pin_reason}
        self.db.execute(
            "UPDATE policies SET pinned_action = ?, details = ? WHERE cluster = ?",
            (pinned, json.dumps(details, sort_keys=True), cluster),
        )


class PgVms(PgRepository, SqlVms):
    PUT = (
        "INSERT INTO vms (name, cluster, mode, boot_host, baseline, requirement, "
        "registered_at, booted_at, current_host, cpu_definition, offline_action, "
        "refusing_hosts, action_reason, refusing_total) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET cluster = excluded.cluster, mode = excluded.mode, "
        "boot_host = excluded.boot_host, baseline = excluded.baseline, "
        "requirement = excluded.requirement, registered_at = excluded.registered_at, "
        "booted_at = excluded.booted_at, current_host = excluded.current_host, "
        "cpu_definition = excluded.cpu_definition, offline_action = excluded.offline_action, "
        "refusing_hosts = excluded.refusing_hosts, action_reason = excluded.action_reason, "
        "refusing_total = excluded.refusing_total"
    )


class PgAdmissions(PgRepository, SqlAdmissions):
    pass


class PgBaselinePins(PgRepository, SqlBaselinePins):
    PUT = (
        "INSERT INTO baseline_pins (cluster, source, baseline, pinned_at, pinned_by) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (cluster) DO UPDATE SET "
        "source = excluded.source, baseline = excluded.baseline, "
        "pinned_at = excluded.pinned_at, pinned_by = excluded.pinned_by"
    )


class PgUnitOfWork:
    """The repositories over one connection's transaction, and the hooks to run once it commits."""

    def __init__(self, db: Connection, writable: bool = True) -> None:
        sql = PgSql(db)
        self.hosts = PgHosts(sql, writable)
        self.profiles = PgProfiles(sql)
        self.events = PgEvents(sql)
        self.policies = PgPolicies(sql, writable)
        self.vms = PgVms(sql)
        self.admissions = PgAdmissions(sql)
        self.baseline_pins = PgBaselinePins(sql)
        self.hooks: list[Callable[[], None]] = []
        self.announced: set[tuple[str, str]] = set()

    def on_commit(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)

    def announce(self, topic: str, key: str) -> None:
        self.announced.add((topic, key))
