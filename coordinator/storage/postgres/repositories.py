"""The PostgreSQL repositories: every SQL statement of the coordinator, in PostgreSQL's dialect.

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

from ...domain.hosts import Event, EventKind, HostStatus, ProfileVersion
from ..interface import (
    Admission,
    BaselinePinRow,
    EventFilter,
    HostRow,
    NewProfile,
    PolicyRow,
    StoredRaw,
    VmRow,
)
from ..rows import host_row, policy_row, vm_row

MAX_EVENTS_PER_QUERY = 100_000
OWN_BYTES_CHUNK = 500  # versions per query of `own_bytes` (SQLite allows 32,766 parameters)

# Advisory lock keys (pg_advisory_xact_lock(class, key)): one class per kind of thing locked.
LOCK_CLASS_HOST = 0x63707531  # a host id, while a report or status change rewrites it
LOCK_CLASS_POLICY = 0x63707532  # a cluster's policy, while it is recomputed
LOCK_EVENTS = 0x6370753300000001  # the event log's tail: ids become visible in order

Connection = psycopg.Connection[DictRow]


class PgHosts:
    def __init__(self, db: Connection, writable: bool = True) -> None:
        self.db = db
        self.writable = writable  # a read() takes no lock: it writes nothing

    def get(self, host_id: str, *, for_update: bool = False) -> HostRow | None:
        for_update = for_update and self.writable
        if for_update:
            # The advisory lock also covers a host not stored yet (no row to lock).
            self.db.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS_HOST, host_id)
            )
        query = "SELECT * FROM hosts WHERE host_id = %s" + (" FOR UPDATE" if for_update else "")
        row = self.db.execute(query, (host_id,)).fetchone()
        return None if row is None else host_row(row)

    def all(self) -> list[HostRow]:
        return [host_row(row) for row in self.db.execute("SELECT * FROM hosts ORDER BY host_id")]

    def in_cluster(self, cluster: str) -> list[HostRow]:
        rows = self.db.execute(
            "SELECT * FROM hosts WHERE cluster = %s ORDER BY host_id", (cluster,)
        ).fetchall()
        return [host_row(row) for row in rows]

    def upsert(self, row: HostRow) -> None:
        self.db.execute(
            "INSERT INTO hosts (host_id, cluster, agent_address, agent_version, status, replayed, "
            "fingerprint, agent_fingerprint, profile_version, first_seen, last_seen, "
            "heartbeat_interval) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (host_id) DO UPDATE SET cluster = excluded.cluster, "
            "agent_address = excluded.agent_address, agent_version = excluded.agent_version, "
            "status = excluded.status, replayed = excluded.replayed, "
            "fingerprint = excluded.fingerprint, agent_fingerprint = excluded.agent_fingerprint, "
            "profile_version = excluded.profile_version, last_seen = excluded.last_seen, "
            "heartbeat_interval = excluded.heartbeat_interval",
            (
                row.host_id,
                row.cluster,
                row.agent_address,
                row.agent_version,
                row.status.value,
                bool(row.replayed),
                row.fingerprint,
                row.agent_fingerprint,
                row.profile_version,
                row.first_seen,
                row.last_seen,
                row.heartbeat_interval,
            ),
        )

    def heard(self, host_id: str, last_seen: float, status: HostStatus, interval: float) -> None:
        self.db.execute(
            "UPDATE hosts SET last_seen = %s, status = %s, heartbeat_interval = %s "
            "WHERE host_id = %s",
            (last_seen, status.value, interval, host_id),
        )

    def set_status(self, host_id: str, status: HostStatus) -> None:
        self.db.execute("UPDATE hosts SET status = %s WHERE host_id = %s", (status.value, host_id))

    def set_maintenance(self, host_id: str, state: str, reason: str) -> None:
        self.db.execute(
            "UPDATE hosts SET maintenance = %s, maintenance_reason = %s WHERE host_id = %s",
            (state, reason, host_id),
        )

    def add_pruned(self, host_id: str, count: int) -> None:
        self.db.execute(
            "UPDATE hosts SET pruned_versions = pruned_versions + %s WHERE host_id = %s",
            (count, host_id),
        )

    def delete(self, host_id: str) -> None:
        self.db.execute("DELETE FROM hosts WHERE host_id = %s", (host_id,))


class PgProfiles:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def add(self, profile: NewProfile) -> int:
        row = self.db.execute(
            "INSERT INTO profiles (host_id, recorded_at, fingerprint, source, raw, "
            "features, gained, lost, summary) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING id",
            (
                profile.host_id,
                profile.recorded_at,
                profile.fingerprint,
                profile.source,
                profile.raw,
                json.dumps(list(profile.features)),
                json.dumps(list(profile.gained)),
                json.dumps(list(profile.lost)),
                json.dumps(profile.summary),
            ),
        ).fetchone()
        # An identity column: a number is never reused, even after the newest is pruned.
        assert row is not None
        version = int(row["id"])
        if profile.leaf_classes:
            # Another coordinator may store the same class at once: the second insert waits
            # for the first and then does nothing.
            with self.db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO leaf_classes (digest, leaves) VALUES (%s, %s) "
                    "ON CONFLICT (digest) DO NOTHING",
                    sorted(profile.leaf_classes.items()),
                )
                cur.executemany(
                    "INSERT INTO profile_leaf_classes (profile_id, digest) VALUES (%s, %s)",
                    [(version, key) for key in sorted(profile.leaf_classes)],
                )
        return version

    def raw(self, version: int) -> StoredRaw | None:
        row = self.db.execute(
            "SELECT host_id, raw FROM profiles WHERE id = %s", (version,)
        ).fetchone()
        if row is None:
            return None
        classes = {
            c["digest"]: bytes(c["leaves"])
            for c in self.db.execute(
                "SELECT c.digest, c.leaves FROM profile_leaf_classes p "
                "JOIN leaf_classes c ON c.digest = p.digest WHERE p.profile_id = %s",
                (version,),
            ).fetchall()
        }
        return StoredRaw(version, row["host_id"], bytes(row["raw"]), classes)

    def own_bytes(self, versions: Sequence[int]) -> dict[int, bytes]:
        numbers = list(versions)
        out: dict[int, bytes] = {}
        for start in range(0, len(numbers), OWN_BYTES_CHUNK):
            chunk = numbers[start : start + OWN_BYTES_CHUNK]
            for row in self.db.execute(
                "SELECT id, raw FROM profiles WHERE id = ANY(%s)", (chunk,)
            ).fetchall():
                out[int(row["id"])] = bytes(row["raw"])
        return out

    def leaf_class_count(self) -> int:
        row = self.db.execute("SELECT COUNT(*) AS n FROM leaf_classes").fetchone()
        assert row is not None
        return int(row["n"])

    def features(self, version: int) -> list[str] | None:
        row = self.db.execute("SELECT features FROM profiles WHERE id = %s", (version,)).fetchone()
        return None if row is None else list(json.loads(row["features"]))

    def history(self, host_id: str) -> list[ProfileVersion]:
        rows = self.db.execute(
            "SELECT * FROM profiles WHERE host_id = %s ORDER BY id", (host_id,)
        ).fetchall()
        return [
            ProfileVersion(
                version=int(row["id"]),
                host_id=row["host_id"],
                recorded_at=float(row["recorded_at"]),
                fingerprint=row["fingerprint"],
                source=row["source"],
                features=tuple(json.loads(row["features"])),
                gained=tuple(json.loads(row["gained"])),
                lost=tuple(json.loads(row["lost"])),
                summary=json.loads(row["summary"]),
            )
            for row in rows
        ]

    def count(self, host_id: str) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) AS n FROM profiles WHERE host_id = %s", (host_id,)
        ).fetchone()
        return 0 if row is None else int(row["n"])

    def oldest(self, host_id: str, limit: int, keep: int | None) -> list[int]:
        return [
            int(row["id"])
            for row in self.db.execute(
                "SELECT id FROM profiles WHERE host_id = %s AND id IS DISTINCT FROM %s::bigint "
                "ORDER BY id LIMIT %s",
                (host_id, keep, limit),
            )
        ]

    def delete(self, versions: Iterable[int]) -> None:
        numbers = list(versions)
        if numbers:
            digests = [
                row["digest"]
                for row in self.db.execute(
                    "DELETE FROM profile_leaf_classes WHERE profile_id = ANY(%s) RETURNING digest",
                    (numbers,),
                ).fetchall()
            ]
            self.db.execute("DELETE FROM profiles WHERE id = ANY(%s)", (numbers,))
            # A class goes with the last version that refers to it: storage stays bounded.
            # A version another coordinator adds at once keeps it (the foreign key fails
            # this transaction, which the agent's next report repeats).
            if digests:
                self.db.execute(
                    "DELETE FROM leaf_classes c WHERE c.digest = ANY(%s) AND NOT EXISTS "
                    "(SELECT 1 FROM profile_leaf_classes p WHERE p.digest = c.digest)",
                    (sorted(set(digests)),),
                )


def _event_where(where: EventFilter) -> tuple[str, list[Any]]:
    sql = ""
    params: list[Any] = []
    for clause, value in (
        ("cluster = %s", where.cluster),
        ("time >= %s", where.since),
        ("host_id = %s", where.host_id),
    ):
        if value:
            sql += f" AND {clause}"
            params.append(value)
    return sql, params


class PgEvents:
    def __init__(self, db: Connection) -> None:
        self.db = db
        self.pending: list[tuple[float, str, str, str, str, str]] = []

    def add(
        self,
        time: float,
        cluster: str,
        host_id: str,
        kind: EventKind,
        message: str,
        details: dict[str, Any],
    ) -> None:
        # Ids are the events list's paging cursor: a reader must never see id N+1 before N.
        # An identity value is taken at insert but visible at commit, so events are
        # inserted at the end of the unit of work (flush), under a lock held to commit.
        details_text = json.dumps(details, sort_keys=True)
        self.pending.append((time, cluster, host_id, kind.value, message, details_text))

    def flush(self) -> None:
        """Insert the pending events; last in the unit of work, so the events lock is always
        the last lock a writer takes (no lock-order cycle with hosts or policies)."""
        if not self.pending:
            return
        self.db.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_EVENTS,))
        with self.db.cursor() as cur:
            cur.executemany(
                "INSERT INTO events (time, cluster, host_id, kind, message, details) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                self.pending,
            )
        self.pending.clear()

    def window(self, where: EventFilter, newest: int) -> tuple[int, int] | None:
        sql, params = _event_where(where)
        row = self.db.execute(
            "SELECT MIN(id) AS first, MAX(id) AS last FROM (SELECT id FROM events WHERE true"
            f"{sql} ORDER BY id DESC LIMIT %s) AS newest",
            [*params, newest],
        ).fetchone()
        return None if row is None or row["first"] is None else (row["first"], row["last"])

    def page(
        self,
        where: EventFilter,
        *,
        after_id: int,
        before_id: int | None,
        ascending: bool,
        limit: int,
    ) -> list[Event]:
        sql, params = _event_where(where)
        query = f"SELECT * FROM events WHERE id > %s{sql}"
        params.insert(0, after_id)
        if before_id is not None:
            query += " AND id < %s"
            params.append(before_id)
        query += f" ORDER BY id {'ASC' if ascending else 'DESC'} LIMIT %s"
        params.append(max(1, min(limit, MAX_EVENTS_PER_QUERY)))
        return [
            Event(
                id=int(row["id"]),
                time=float(row["time"]),
                cluster=row["cluster"],
                host_id=row["host_id"],
                kind=EventKind(row["kind"]),
                message=row["message"],
                details=json.loads(row["details"]),
            )
            for row in self.db.execute(query, params)
        ]


class PgPolicies:
    def __init__(self, db: Connection, writable: bool = True) -> None:
        self.db = db
        self.writable = writable  # a read() takes no lock: it writes nothing

    def _lock(self, cluster: str) -> None:
        """Until commit: one writer of this cluster's policy, stored yet or not."""
        self.db.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS_POLICY, cluster)
        )

    def get(self, cluster: str, *, for_update: bool = False) -> PolicyRow | None:
        for_update = for_update and self.writable
        if for_update:
            self._lock(cluster)
        query = "SELECT * FROM policies WHERE cluster = %s" + (" FOR UPDATE" if for_update else "")
        row = self.db.execute(query, (cluster,)).fetchone()
        return None if row is None else policy_row(row)

    def all(self) -> list[PolicyRow]:
        return [
            policy_row(row) for row in self.db.execute("SELECT * FROM policies ORDER BY cluster")
        ]

    def clusters(self) -> list[str]:
        rows = self.db.execute("SELECT cluster FROM policies ORDER BY cluster").fetchall()
        return [row["cluster"] for row in rows]

    def put(self, row: PolicyRow) -> None:
        self.db.execute(
            "INSERT INTO policies (cluster, action, computed_action, pinned_action, reason, "
            "details, version, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (cluster) DO UPDATE SET action = excluded.action, "
            "computed_action = excluded.computed_action, pinned_action = excluded.pinned_action, "
            "reason = excluded.reason, details = excluded.details, version = excluded.version, "
            "updated_at = excluded.updated_at",
            (
                row.cluster,
                row.action,
                row.computed_action,
                row.pinned_action,
                row.reason,
                json.dumps(row.details, sort_keys=True),
                row.version,
                row.updated_at,
            ),
        )

    def set_pin(
        self, cluster: str, pinned: int | None, pin_reason: str, *, initial: PolicyRow
    ) -> None:
        # The details are merged here, under the cluster's lock, so they stay the same
        # sorted JSON text the SQLite backend keeps (jsonb would reorder the keys).
        self._lock(cluster)
        row = self.db.execute(
            "SELECT details FROM policies WHERE cluster = %s FOR UPDATE", (cluster,)
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
            "UPDATE policies SET pinned_action = %s, details = %s WHERE cluster = %s",
            (pinned, json.dumps(details, sort_keys=True), cluster),
        )

    def pinned_action(self, cluster: str) -> int | None:
        row = self.db.execute(
            "SELECT pinned_action FROM policies WHERE cluster = %s", (cluster,)
        ).fetchone()
        return None if row is None or row["pinned_action"] is None else int(row["pinned_action"])

    def bump_version(self, cluster: str, updated_at: float) -> int | None:
        self._lock(cluster)
        row = self.db.execute(
            "UPDATE policies SET version = version + 1, updated_at = %s WHERE cluster = %s "
            "RETURNING version",
            (updated_at, cluster),
        ).fetchone()
        return None if row is None else int(row["version"])


class PgVms:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def get(self, name: str) -> VmRow | None:
        row = self.db.execute("SELECT * FROM vms WHERE name = %s", (name,)).fetchone()
        return None if row is None else vm_row(row)

    def all(self) -> list[VmRow]:
        return [vm_row(row) for row in self.db.execute("SELECT * FROM vms ORDER BY name")]

    def in_cluster(self, cluster: str) -> list[VmRow]:
        rows = self.db.execute(
            "SELECT * FROM vms WHERE cluster = %s ORDER BY name", (cluster,)
        ).fetchall()
        return [vm_row(row) for row in rows]

    def set_action(
        self, name: str, action: int, refusing_hosts: Sequence[str], reason: str
    ) -> None:
        self.db.execute(
            "UPDATE vms SET offline_action = %s, refusing_hosts = %s, action_reason = %s "
            "WHERE name = %s",
            (int(action), json.dumps(list(refusing_hosts)), reason, name),
        )

    def put(self, row: VmRow) -> None:
        self.db.execute(
            "INSERT INTO vms (name, cluster, mode, boot_host, baseline, requirement, "
            "registered_at, booted_at, current_host, cpu_definition, offline_action, "
            "refusing_hosts, action_reason) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET cluster = excluded.cluster, mode = excluded.mode, "
            "boot_host = excluded.boot_host, baseline = excluded.baseline, "
            "requirement = excluded.requirement, registered_at = excluded.registered_at, "
            "booted_at = excluded.booted_at, current_host = excluded.current_host, "
            "cpu_definition = excluded.cpu_definition, offline_action = excluded.offline_action, "
            "refusing_hosts = excluded.refusing_hosts, action_reason = excluded.action_reason",
            (
                row.name,
                row.cluster,
                row.mode,
                row.boot_host,
                row.baseline,
                row.requirement,
                row.registered_at,
                row.booted_at,
                row.current_host,
                row.cpu_definition,
                None if row.offline_action is None else int(row.offline_action),
                json.dumps(list(row.refusing_hosts)),
                row.action_reason,
            ),
        )

    def move(self, name: str, cluster: str, current_host: str | None) -> None:
        self.db.execute(
            "UPDATE vms SET cluster = %s, current_host = %s WHERE name = %s",
            (cluster, current_host, name),
        )

    def delete(self, name: str) -> None:
        self.db.execute("DELETE FROM vms WHERE name = %s", (name,))


class PgAdmissions:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def all(self) -> list[Admission]:
        return [
            Admission(row["cluster"], row["pattern"], float(row["admitted_at"]), row["admitted_by"])
            for row in self.db.execute(
                "SELECT cluster, pattern, admitted_at, admitted_by FROM admissions "
                "ORDER BY cluster, pattern"
            )
        ]

    def add(self, admissions: Iterable[Admission]) -> None:
        with self.db.cursor() as cur:
            cur.executemany(
                "INSERT INTO admissions (cluster, pattern, admitted_at, admitted_by) "
                "VALUES (%s, %s, %s, %s)",
                [(a.cluster, a.pattern, a.admitted_at, a.admitted_by) for a in admissions],
            )

    def remove(self, cluster: str, patterns: Iterable[str]) -> None:
        with self.db.cursor() as cur:
            cur.executemany(
                "DELETE FROM admissions WHERE cluster = %s AND pattern = %s",
                [(cluster, p) for p in patterns],
            )


class PgBaselinePins:
    def __init__(self, db: Connection) -> None:
        self.db = db

    @staticmethod
    def _row(row: DictRow) -> BaselinePinRow:
        return BaselinePinRow(
            row["cluster"],
            row["source"],
            json.loads(row["baseline"]),
            float(row["pinned_at"]),
            row["pinned_by"],
        )

    def get(self, cluster: str) -> BaselinePinRow | None:
        row = self.db.execute(
            "SELECT cluster, source, baseline, pinned_at, pinned_by FROM baseline_pins "
            "WHERE cluster = %s",
            (cluster,),
        ).fetchone()
        return None if row is None else self._row(row)

    def all(self) -> list[BaselinePinRow]:
        return [
            self._row(row)
            for row in self.db.execute(
                "SELECT cluster, source, baseline, pinned_at, pinned_by FROM baseline_pins "
                "ORDER BY cluster"
            )
        ]

    def put(self, row: BaselinePinRow) -> None:
        self.db.execute(
            "INSERT INTO baseline_pins (cluster, source, baseline, pinned_at, pinned_by) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (cluster) DO UPDATE SET "
            "source = excluded.source, baseline = excluded.baseline, "
            "pinned_at = excluded.pinned_at, pinned_by = excluded.pinned_by",
            (row.cluster, row.source, json.dumps(row.baseline), row.pinned_at, row.pinned_by),
        )

    def delete(self, cluster: str) -> None:
        self.db.execute("DELETE FROM baseline_pins WHERE cluster = %s", (cluster,))


class PgUnitOfWork:
    """The repositories over one connection's transaction, and the hooks to run once it commits."""

    def __init__(self, db: Connection, writable: bool = True) -> None:
        self.hosts = PgHosts(db, writable)
        self.profiles = PgProfiles(db)
        self.events = PgEvents(db)
        self.policies = PgPolicies(db, writable)
        self.vms = PgVms(db)
        self.admissions = PgAdmissions(db)
        self.baseline_pins = PgBaselinePins(db)
        self.hooks: list[Callable[[], None]] = []
        self.announced: set[tuple[str, str]] = set()

    def on_commit(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)

    def announce(self, topic: str, key: str) -> None:
        self.announced.add((topic, key))
