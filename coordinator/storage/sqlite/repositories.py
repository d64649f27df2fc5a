"""The SQLite repositories: every SQL statement of the coordinator, in SQLite's dialect."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

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


class SqliteHosts:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def get(self, host_id: str, *, for_update: bool = False) -> HostRow | None:
        # for_update needs nothing here: BEGIN IMMEDIATE already serialises every writer.
        row = self.db.execute("SELECT * FROM hosts WHERE host_id = ?", (host_id,)).fetchone()
        return None if row is None else host_row(row)

    def all(self) -> list[HostRow]:
        return [host_row(row) for row in self.db.execute("SELECT * FROM hosts ORDER BY host_id")]

    def in_cluster(self, cluster: str) -> list[HostRow]:
        rows = self.db.execute(
            "SELECT * FROM hosts WHERE cluster = ? ORDER BY host_id", (cluster,)
        ).fetchall()
        return [host_row(row) for row in rows]

    def upsert(self, row: HostRow) -> None:
        self.db.execute(
            "INSERT INTO hosts (host_id, cluster, agent_address, agent_version, status, replayed, "
            "fingerprint, agent_fingerprint, profile_version, first_seen, last_seen, "
            "heartbeat_interval) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(host_id) DO UPDATE SET cluster = excluded.cluster, "
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
                int(row.replayed),
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


class SqliteProfiles:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def add(self, profile: NewProfile) -> int:
        cur = self.db.execute(
            "INSERT INTO profiles (host_id, recorded_at, fingerprint, source, raw, "
            "features, gained, lost, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        )
        # AUTOINCREMENT: a number is never reused, even after the newest version is pruned.
        assert cur.lastrowid is not None
        version = int(cur.lastrowid)
        if profile.leaf_classes:
            self.db.executemany(
                "INSERT OR IGNORE INTO leaf_classes (digest, leaves) VALUES (?, ?)",
                sorted(profile.leaf_classes.items()),
            )
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
            )
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
            ):
                out[int(row["id"])] = bytes(row["raw"])
        return out

    def leaf_class_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM leaf_classes").fetchone()[0])

    def features(self, version: int) -> list[str] | None:
        row = self.db.execute("SELECT features FROM profiles WHERE id = ?", (version,)).fetchone()
        return None if row is None else list(json.loads(row[0]))

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
        return int(
            self.db.execute(
                "SELECT COUNT(*) FROM profiles WHERE host_id = ?", (host_id,)
            ).fetchone()[0]
        )

    def oldest(self, host_id: str, limit: int, keep: int | None) -> list[int]:
        return [
            int(row[0])
            for row in self.db.execute(
                "SELECT id FROM profiles WHERE host_id = ? AND id IS NOT ? ORDER BY id LIMIT ?",
                (host_id, keep, limit),
            )
        ]

    def delete(self, versions: Iterable[int]) -> None:
        numbers = [(v,) for v in versions]
        digests: set[str] = set()
        for (number,) in numbers:
            digests.update(
                row[0]
                for row in self.db.execute(
                    "SELECT digest FROM profile_leaf_classes WHERE profile_id = ?", (number,)
                )
            )
        self.db.executemany("DELETE FROM profile_leaf_classes WHERE profile_id = ?", numbers)
        self.db.executemany("DELETE FROM profiles WHERE id = ?", numbers)
        # A class goes with the last version that refers to it: storage stays bounded.
        self.db.executemany(
            "DELETE FROM leaf_classes WHERE digest = ? AND NOT EXISTS "
            "(SELECT 1 FROM profile_leaf_classes p WHERE p.digest = leaf_classes.digest)",
            [(d,) for d in sorted(digests)],
        )


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


class SqliteEvents:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def add(
        self,
        time: float,
        cluster: str,
        host_id: str,
        kind: EventKind,
        message: str,
        details: dict[str, Any],
    ) -> None:
        self.db.execute(
            "INSERT INTO events (time, cluster, host_id, kind, message, details) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (time, cluster, host_id, kind.value, message, json.dumps(details, sort_keys=True)),
        )

    def window(self, where: EventFilter, newest: int) -> tuple[int, int] | None:
        sql, params = _event_where(where)
        row = self.db.execute(
            "SELECT MIN(id), MAX(id) FROM (SELECT id FROM events WHERE 1=1"
            f"{sql} ORDER BY id DESC LIMIT ?)",
            [*params, newest],
        ).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

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


def _action(value: int | None) -> str | None:
    """Actions are stored as the text of their number (the schema since version 2)."""
    return None if value is None else str(int(value))


class SqlitePolicies:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def get(self, cluster: str, *, for_update: bool = False) -> PolicyRow | None:
        # for_update needs nothing here: BEGIN IMMEDIATE already serialises every writer.
        row = self.db.execute("SELECT * FROM policies WHERE cluster = ?", (cluster,)).fetchone()
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
            "ON CONFLICT(cluster) DO UPDATE SET action = excluded.action, "
            "computed_action = excluded.computed_action, pinned_action = excluded.pinned_action, "
            "reason = excluded.reason, details = excluded.details, version = excluded.version, "
            "updated_at = excluded.updated_at",
            (
                row.cluster,
                _action(row.action),
                _action(row.computed_action),
                _action(row.pinned_action),
                row.reason,
                json.dumps(row.details, sort_keys=True),
                row.version,
                row.updated_at,
            ),
        )

    def set_pin(
        self, cluster: str, pinned: int | None, pin_reason: str, *, initial: PolicyRow
    ) -> None:
        self.db.execute(
            "INSERT INTO policies (cluster, action, computed_action, pinned_action, reason, "
            "details, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(cluster) DO UPDATE SET pinned_action = excluded.pinned_action, "
            "details = json_set(policies.details, '$.pin_reason', "
            "json_extract(excluded.details, '$.pin_reason'))",
            (
                cluster,
                _action(initial.action),
                _action(initial.computed_action),
                _action(pinned),
                initial.reason,
                json.dumps({**initial.details, "pin_reason": pin_reason}, sort_keys=True),
                initial.version,
                initial.updated_at,
            ),
        )

    def pinned_action(self, cluster: str) -> int | None:
        row = self.db.execute(
            "SELECT pinned_action FROM policies WHERE cluster = ?", (cluster,)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def bump_version(self, cluster: str, updated_at: float) -> int | None:
        row = self.db.execute(
            "UPDATE policies SET version = version + 1, updated_at = ? WHERE cluster = ? "
            "RETURNING version",
            (updated_at, cluster),
        ).fetchone()
        return None if row is None else int(row[0])


class SqliteVms:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

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
        self, name: str, action: int, refusing_hosts: Sequence[str], reason: str
    ) -> None:
        self.db.execute(
            "UPDATE vms SET offline_action = ?, refusing_hosts = ?, action_reason = ? "
            "WHERE name = ?",
            (_action(action), json.dumps(list(refusing_hosts)), reason, name),
        )

    def put(self, row: VmRow) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO vms (name, cluster, mode, boot_host, baseline, requirement, "
            "registered_at, booted_at, current_host, cpu_definition, offline_action, "
            "refusing_hosts, action_reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                _action(row.offline_action),
                json.dumps(list(row.refusing_hosts)),
                row.action_reason,
            ),
        )

    def move(self, name: str, cluster: str, current_host: str | None) -> None:
        self.db.execute(
            "UPDATE vms SET cluster = ?, current_host = ? WHERE name = ?",
            (cluster, current_host, name),
        )

    def delete(self, name: str) -> None:
        self.db.execute("DELETE FROM vms WHERE name = ?", (name,))


class SqliteAdmissions:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def all(self) -> list[Admission]:
        return [
            Admission(row[0], row[1], float(row[2]), row[3])
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


class SqliteBaselinePins:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    @staticmethod
    def _row(row: Any) -> BaselinePinRow:
        return BaselinePinRow(row[0], row[1], json.loads(row[2]), float(row[3]), row[4])

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
            "INSERT OR REPLACE INTO baseline_pins (cluster, source, baseline, pinned_at, "
            "pinned_by) VALUES (?, ?, ?, ?, ?)",
            (row.cluster, row.source, json.dumps(row.baseline), row.pinned_at, row.pinned_by),
        )

    def delete(self, cluster: str) -> None:
        self.db.execute("DELETE FROM baseline_pins WHERE cluster = ?", (cluster,))


class SqliteUnitOfWork:
    """The repositories over one connection, and the hooks to run once it commits."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.hosts = SqliteHosts(db)
        self.profiles = SqliteProfiles(db)
        self.events = SqliteEvents(db)
        self.policies = SqlitePolicies(db)
        self.vms = SqliteVms(db)
        self.admissions = SqliteAdmissions(db)
        self.baseline_pins = SqliteBaselinePins(db)
        self.hooks: list[Callable[[], None]] = []

    def on_commit(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)

    def announce(self, topic: str, key: str) -> None:
        """One coordinator per file (the lock file): nobody else to tell."""
