"""The repositories both SQL backends share: every method once, every common statement once.

SQLite and PostgreSQL hold the same tables under the same column names (`rows.py`), so most
statements differ only in their placeholders. They are written here once, with SQLite's
``?``; the PostgreSQL backend hands the repositories a connection that turns each ``?``
into psycopg's ``%s`` (so no statement here may hold a literal ``?`` or ``%``). What
really differs stays in the backends, as subclasses: per-backend statements (upserts,
``INSERT OR IGNORE`` / ``ON CONFLICT``, ``IS NOT`` / ``IS DISTINCT FROM``), how an action
is stored (SQLite: its number as text; PostgreSQL: a smallint), the row and advisory locks
concurrent PostgreSQL writers need (``_for_update``, ``_lock``), and the statements whose
shape is the dialect's own (deleting versions, pinning a policy, deferred events).
Rows are read by column name, which ``sqlite3.Row`` and psycopg's dict rows both answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Protocol

from ..domain.hosts import Event, EventKind, HostStatus, ProfileVersion
from .interface import (
    Admission,
    BaselinePinRow,
    EventFilter,
    HostRow,
    Member,
    NewProfile,
    PolicyRow,
    StoredRaw,
    VmRow,
)
from .rows import host_row, policy_row, vm_row

MAX_EVENTS_PER_QUERY = 100_000
OWN_BYTES_CHUNK = 500  # versions per query of `own_bytes` (SQLite allows 32,766 parameters)


class Cursor(Protocol):
    """What a statement's result gives: rows read by column name."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Sql(Protocol):
    """A connection as the repositories use it: ``?`` placeholders, one transaction."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> object: ...


class SqlRepository:
    """A repository over one connection; ``writable`` is False in a read (no locks taken)."""

    def __init__(self, db: Sql, writable: bool = True) -> None:
        self.db = db
        self.writable = writable

    def _for_update(self, key: str) -> str:
        """Locks taken before reading ``key``'s row to rewrite it; the text the query ends
        with. SQLite needs none: ``BEGIN IMMEDIATE`` already serialises every writer."""
        return ""

    def _lock(self, key: str) -> None:
        """Until commit, one writer of ``key`` (stored yet or not); nothing in SQLite."""

    @staticmethod
    def _action(value: int | None) -> object:
        """An OfflineAction as the backend's column stores it."""
        raise NotImplementedError


class SqlHosts(SqlRepository):
    def get(self, host_id: str, *, for_update: bool = False) -> HostRow | None:
        query = "SELECT * FROM hosts WHERE host_id = ?"
        if for_update:
            query += self._for_update(host_id)
        row = self.db.execute(query, (host_id,)).fetchone()
        return None if row is None else host_row(row)

    def all(self) -> list[HostRow]:
        return [host_row(row) for row in self.db.execute("SELECT * FROM hosts ORDER BY host_id")]

    def in_cluster(self, cluster: str) -> list[HostRow]:
        rows = self.db.execute(
            "SELECT * FROM hosts WHERE cluster = ? ORDER BY host_id", (cluster,)
        ).fetchall()
        return [host_row(row) for row in rows]

    def members(self, cluster: str) -> list[Member]:
        rows = self.db.execute(
            "SELECT host_id, profile_version, status, maintenance FROM hosts "
            "WHERE cluster = ? ORDER BY host_id",
            (cluster,),
        ).fetchall()
        status = HostStatus._value2member_map_  # the enum's own lookup, without its call
        return [
            Member(
                r["host_id"],
                int(r["profile_version"]),
                status[r["status"]],  # type: ignore[arg-type]
                r["maintenance"],
            )
            for r in rows
        ]

    def upsert(self, row: HostRow) -> None:
        self.db.execute(
            "INSERT INTO hosts (host_id, cluster, agent_address, agent_version, status, replayed, "
            "fingerprint, agent_fingerprint, profile_version, first_seen, last_seen, "
            "heartbeat_interval) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
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
                bool(row.replayed),  # SQLite stores 0/1, PostgreSQL a boolean
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
            "UPDATE hosts SET last_seen = ?, status = ?, heartbeat_interval = ? WHERE host_id = ?",
            (last_seen, status.value, interval, host_id),
        )

    def set_status(self, host_id: str, status: HostStatus) -> None:
        self.db.execute("UPDATE hosts SET status = ? WHERE host_id = ?", (status.value, host_id))

    def set_maintenance(self, host_id: str, state: str, reason: str) -> None:
        self.db.execute(
            "UPDATE hosts SET maintenance = ?, maintenance_reason = ? WHERE host_id = ?",
            (state, reason, host_id),
        )

    def add_pruned(self, host_id: str, count: int) -> None:
        self.db.execute(
            "UPDATE hosts SET pruned_versions = pruned_versions + ? WHERE host_id = ?",
            (count, host_id),
        )

    def delete(self, host_id: str) -> None:
        self.db.execute("DELETE FROM hosts WHERE host_id = ?", (host_id,))


class SqlProfiles(SqlRepository):
    INSERT_LEAF_CLASSES: ClassVar[str]
    """Stores a leaf class (digest, leaves) unless it is stored already."""
    NOT_KEPT: ClassVar[str]
    """The condition ``id`` is not the version to keep (a parameter that may be NULL)."""

    def add(self, profile: NewProfile) -> int:
        row = self.db.execute(
            "INSERT INTO profiles (host_id, recorded_at, fingerprint, source, raw, "
            "features, gained, lost, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
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
        # AUTOINCREMENT (SQLite), an identity column (PostgreSQL): a number is never reused,
        # even after the newest version is pruned.
        assert row is not None
        version = int(row["id"])
        if profile.leaf_classes:
            self.db.executemany(self.INSERT_LEAF_CLASSES, sorted(profile.leaf_classes.items()))
            self.db.executemany(
                "INSERT INTO profile_leaf_classes (profile_id, digest) VALUES (?, ?)",
                [(version, key) for key in sorted(profile.leaf_classes)],
            )
        return version

    def raw(self, version: int) -> StoredRaw | None:
        row = self.db.execute(
            "SELECT host_id, raw FROM profiles WHERE id = ?", (version,)
        ).fetchone()
        if row is None:
            return None
        classes = {
            c["digest"]: bytes(c["leaves"])
            for c in self.db.execute(
                "SELECT c.digest, c.leaves FROM profile_leaf_classes p "
                "JOIN leaf_classes c ON c.digest = p.digest WHERE p.profile_id = ?",
                (version,),
            ).fetchall()
        }
        return StoredRaw(version, row["host_id"], bytes(row["raw"]), classes)

    def own_bytes(self, versions: Sequence[int]) -> dict[int, bytes]:
        numbers = list(versions)
        out: dict[int, bytes] = {}
        for start in range(0, len(numbers), OWN_BYTES_CHUNK):
            chunk = numbers[start : start + OWN_BYTES_CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT id, raw FROM profiles WHERE id IN ({marks})", chunk
            ).fetchall():
                out[int(row["id"])] = bytes(row["raw"])
        return out

    def leaf_class_count(self) -> int:
        row = self.db.execute("SELECT COUNT(*) AS n FROM leaf_classes").fetchone()
        assert row is not None
        return int(row["n"])

    def features(self, version: int) -> list[str] | None:
        row = self.db.execute("SELECT features FROM profiles WHERE id = ?", (version,)).fetchone()
        return None if row is None else list(json.loads(row["features"]))

    def history(self, host_id: str) -> list[ProfileVersion]:
        rows = self.db.execute(
            "SELECT * FROM profiles WHERE host_id = ? ORDER BY id", (host_id,)
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
            "SELECT COUNT(*) AS n FROM profiles WHERE host_id = ?", (host_id,)
        ).fetchone()
        return 0 if row is None else int(row["n"])

    def oldest(self, host_id: str, limit: int, keep: int | None) -> list[int]:
        return [
            int(row["id"])
            for row in self.db.execute(
                f"SELECT id FROM profiles WHERE host_id = ? AND {self.NOT_KEPT} ORDER BY id LIMIT ?",
                (host_id, keep, limit),
            )
        ]


def _event_where(where: EventFilter) -> tuple[str, list[Any]]:
    sql = ""
    params: list[Any] = []
    for clause, value in (
        ("cluster = ?", where.cluster),
        ("time >= ?", where.since),
        ("host_id = ?", where.host_id),
    ):
        if value:
            sql += f" AND {clause}"
            params.append(value)
    return sql, params


INSERT_EVENTS = (
    "INSERT INTO events (time, cluster, host_id, kind, message, details) VALUES (?, ?, ?, ?, ?, ?)"
)
EventValues = tuple[float, str, str, str, str, str]
"""An event as `INSERT_EVENTS` stores it."""


class SqlEvents(SqlRepository):
    def add(
        self,
        time: float,
        cluster: str,
        host_id: str,
        kind: EventKind,
        message: str,
        details: dict[str, Any],
    ) -> None:
        details_text = json.dumps(details, sort_keys=True)
        self._insert((time, cluster, host_id, kind.value, message, details_text))

    def _insert(self, values: EventValues) -> None:
        self.db.execute(INSERT_EVENTS, values)

    def window(self, where: EventFilter, newest: int) -> tuple[int, int] | None:
        sql, params = _event_where(where)
        row = self.db.execute(
            "SELECT MIN(id) AS first_id, MAX(id) AS last_id FROM (SELECT id FROM events "
            f"WHERE 1=1{sql} ORDER BY id DESC LIMIT ?) AS newest",
            [*params, newest],
        ).fetchone()
        if row is None or row["first_id"] is None:
            return None
        return int(row["first_id"]), int(row["last_id"])

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
        query = f"SELECT * FROM events WHERE id > ?{sql}"
        params.insert(0, after_id)
        if before_id is not None:
            query += " AND id < ?"
            params.append(before_id)
        query += f" ORDER BY id {'ASC' if ascending else 'DESC'} LIMIT ?"
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


class SqlPolicies(SqlRepository):
    def get(self, cluster: str, *, for_update: bool = False) -> PolicyRow | None:
        query = "SELECT * FROM policies WHERE cluster = ?"
        if for_update:
            query += self._for_update(cluster)
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
            "details, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (cluster) DO UPDATE SET action = excluded.action, "
            "computed_action = excluded.computed_action, pinned_action = excluded.pinned_action, "
            "reason = excluded.reason, details = excluded.details, version = excluded.version, "
            "updated_at = excluded.updated_at",
            (
                row.cluster,
                self._action(row.action),
                self._action(row.computed_action),
                self._action(row.pinned_action),
                row.reason,
                json.dumps(row.details, sort_keys=True),
                row.version,
                row.updated_at,
            ),
        )

    def pinned_action(self, cluster: str) -> int | None:
        row = self.db.execute(
            "SELECT pinned_action FROM policies WHERE cluster = ?", (cluster,)
        ).fetchone()
        return None if row is None or row["pinned_action"] is None else int(row["pinned_action"])

    def bump_version(self, cluster: str, updated_at: float) -> int | None:
        self._lock(cluster)
        row = self.db.execute(
            "UPDATE policies SET version = version + 1, updated_at = ? WHERE cluster = ? "
            "RETURNING version",
            (updated_at, cluster),
        ).fetchone()
        return None if row is None else int(row["version"])


class SqlVms(SqlRepository):
    PUT: ClassVar[str]
    """Inserts or replaces a VM: its 14 columns, in `put`'s order."""

    def get(self, name: str) -> VmRow | None:
        row = self.db.execute("SELECT * FROM vms WHERE name = ?", (name,)).fetchone()
        return None if row is None else vm_row(row)

    def all(self) -> list[VmRow]:
        return [vm_row(row) for row in self.db.execute("SELECT * FROM vms ORDER BY name")]

    def in_cluster(self, cluster: str) -> list[VmRow]:
        rows = self.db.execute(
            "SELECT * FROM vms WHERE cluster = ? ORDER BY name", (cluster,)
        ).fetchall()
        return [vm_row(row) for row in rows]

    def set_action(
        self, name: str, action: int, refusing_hosts: Sequence[str], reason: str, total: int
    ) -> None:
        self.db.execute(
            "UPDATE vms SET offline_action = ?, refusing_hosts = ?, action_reason = ?, "
            "refusing_total = ? WHERE name = ?",
            (self._action(action), json.dumps(list(refusing_hosts)), reason, total, name),
        )

    def put(self, row: VmRow) -> None:
        self.db.execute(
            self.PUT,
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
                self._action(row.offline_action),
                json.dumps(list(row.refusing_hosts)),
                row.action_reason,
                row.refusing_total,
            ),
        )

    def move(self, name: str, cluster: str, current_host: str | None) -> None:
        self.db.execute(
            "UPDATE vms SET cluster = ?, current_host = ? WHERE name = ?",
            (cluster, current_host, name),
        )

    def delete(self, name: str) -> None:
        self.db.execute("DELETE FROM vms WHERE name = ?", (name,))


class SqlAdmissions(SqlRepository):
    def all(self) -> list[Admission]:
        return [
            Admission(row["cluster"], row["pattern"], float(row["admitted_at"]), row["admitted_by"])
            for row in self.db.execute(
                "SELECT cluster, pattern, admitted_at, admitted_by FROM admissions "
                "ORDER BY cluster, pattern"
            )
        ]

    def add(self, admissions: Iterable[Admission]) -> None:
        self.db.executemany(
            "INSERT INTO admissions (cluster, pattern, admitted_at, admitted_by) "
            "VALUES (?, ?, ?, ?)",
            [(a.cluster, a.pattern, a.admitted_at, a.admitted_by) for a in admissions],
        )

    def remove(self, cluster: str, patterns: Iterable[str]) -> None:
        self.db.executemany(
            "DELETE FROM admissions WHERE cluster = ? AND pattern = ?",
            [(cluster, p) for p in patterns],
        )


class SqlBaselinePins(SqlRepository):
    PUT: ClassVar[str]
    """Inserts or replaces a pin: cluster, source, baseline, pinned_at, pinned_by."""

    @staticmethod
    def _row(row: Any) -> BaselinePinRow:
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
            "WHERE cluster = ?",
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
            self.PUT,
            (row.cluster, row.source, json.dumps(row.baseline), row.pinned_at, row.pinned_by),
        )

    def delete(self, cluster: str) -> None:
        self.db.execute("DELETE FROM baseline_pins WHERE cluster = ?", (cluster,))
