"""Stored rows -> the interface's dataclasses: one mapping for every backend.

SQLite's ``sqlite3.Row`` and psycopg's dict rows both answer ``row["column"]``, and the
schemas hold the same columns under the same names, so the conversion lives once.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from ..domain.hosts import HostStatus
from .interface import HostRow, PolicyRow, VmRow


class Row(Protocol):
    """A database row read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


def host_row(row: Row) -> HostRow:
    return HostRow(
        host_id=row["host_id"],
        cluster=row["cluster"],
        agent_address=row["agent_address"],
        agent_version=row["agent_version"],
        status=HostStatus(row["status"]),
        replayed=bool(row["replayed"]),
        fingerprint=row["fingerprint"],
        agent_fingerprint=row["agent_fingerprint"],
        profile_version=int(row["profile_version"]),
        first_seen=float(row["first_seen"]),
        last_seen=float(row["last_seen"]),
        heartbeat_interval=float(row["heartbeat_interval"]),
        pruned_versions=int(row["pruned_versions"]),
        maintenance=row["maintenance"],
        maintenance_reason=row["maintenance_reason"],
    )


def policy_row(row: Row) -> PolicyRow:
    return PolicyRow(
        cluster=row["cluster"],
        action=int(row["action"]),
        computed_action=int(row["computed_action"]),
        pinned_action=None if row["pinned_action"] is None else int(row["pinned_action"]),
        reason=row["reason"],
        details=json.loads(row["details"]),
        version=int(row["version"]),
        updated_at=float(row["updated_at"]),
    )


def vm_row(row: Row) -> VmRow:
    refusing = tuple(json.loads(row["refusing_hosts"]))
    return VmRow(
        name=row["name"],
        cluster=row["cluster"],
        mode=row["mode"],
        boot_host=row["boot_host"],
        baseline=row["baseline"],
        requirement=row["requirement"],
        registered_at=float(row["registered_at"]),
        booted_at=float(row["booted_at"]),
        current_host=row["current_host"],
        cpu_definition=row["cpu_definition"],
        offline_action=None if row["offline_action"] is None else int(row["offline_action"]),
        refusing_hosts=refusing,
        action_reason=row["action_reason"],
        # NULL: stored before the count was, when the list held every refusing host.
        refusing_total=len(refusing)
        if row["refusing_total"] is None
        else int(row["refusing_total"]),
    )
