"""The SQLite repositories: the shared ones (`..sql_common`) in SQLite's dialect.

What is SQLite's own: actions stored as the text of their number, ``INSERT OR IGNORE`` /
``INSERT OR REPLACE``, ``json_set`` for a pin's reason, and pruning without arrays. No
locks: ``BEGIN IMMEDIATE`` already serialises every writer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable

from ..interface import PolicyRow
from ..sql_common import (
    SqlAdmissions,
    SqlBaselinePins,
    SqlEvents,
    SqlHosts,
    SqlPolicies,
    SqlProfiles,
    SqlRepository,
    SqlVms,
)


class SqliteRepository(SqlRepository):
    @staticmethod
    def _action(value: int | None) -> str | None:
        """Actions are stored as the text of their number (the schema since version 2)."""
        return None if value is None else str(int(value))


class SqliteHosts(SqliteRepository, SqlHosts):
    pass


class SqliteProfiles(SqliteRepository, SqlProfiles):
    INSERT_LEAF_CLASSES = "INSERT OR IGNORE INTO leaf_classes (digest, leaves) VALUES (?, ?)"
    NOT_KEPT = "id IS NOT ?"

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


class SqliteEvents(SqliteRepository, SqlEvents):
    pass


class SqlitePolicies(SqliteRepository, SqlPolicies):
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
                self._action(initial.action),
                self._action(initial.computed_action),
                self._action(pinned),
                initial.reason,
                json.dumps({**initial.details, "pin_reason": pin_reason}, sort_keys=True),
                initial.version,
                initial.updated_at,
            ),
        )


class SqliteVms(SqliteRepository, SqlVms):
    PUT = (
        "INSERT OR REPLACE INTO vms (name, cluster, mode, boot_host, baseline, requirement, "
        "registered_at, booted_at, current_host, cpu_definition, offline_action, "
        "refusing_hosts, action_reason, refusing_total) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )


class SqliteAdmissions(SqliteRepository, SqlAdmissions):
    pass


class SqliteBaselinePins(SqliteRepository, SqlBaselinePins):
    PUT = (
        "INSERT OR REPLACE INTO baseline_pins (cluster, source, baseline, pinned_at, "
        "pinned_by) VALUES (?, ?, ?, ?, ?)"
    )


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
