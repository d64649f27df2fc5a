"""The policy engine: each cluster's offline action, kept right inside every registry change.

`recompute_in_tx` runs in the same SQLite transaction as the join, leave,
status or profile change that caused it, so the stored policy can never
disagree with the stored hosts. Watchers are woken after the commit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass

from .domain.audit import HostInput, audit
from .domain.hosts import EventKind
from .domain.policy import (
    HostState,
    OfflineAction,
    PolicyDecision,
    PolicyRefusedError,
    check_pin,
    decide,
)
from .registry import Registry, UnknownHostError, check_name
from .store import Store

POLICY_PAIR_LIMIT = 50


@dataclass(frozen=True)
class StoredPolicy:
    """A decision as stored: with its version and time, what watchers receive."""

    decision: PolicyDecision
    version: int
    updated_at: float


class UnknownClusterError(LookupError):
    """No host ever joined that cluster and no policy was pinned for it (NOT_FOUND)."""


class PolicyEngine:
    """Computes, stores and publishes every cluster's policy."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._policies: dict[str, StoredPolicy] = {}
        self._changed = threading.Condition()
        self._closed = False
        registry.on_change.append(self.recompute_in_tx)
        registry.after_commit.append(self._publish)
        self._load()
        self._recompute_all()

    # ---- computing -------------------------------------------------------------------

    def _members(self, db: sqlite3.Connection, cluster: str) -> list[tuple[str, str, int]]:
        return [
            (row[0], row[1], row[2])
            for row in db.execute(
                "SELECT host_id, status, profile_version FROM hosts WHERE cluster = ? ORDER BY host_id",
                (cluster,),
            )
        ]

    def compute(self, db: sqlite3.Connection, cluster: str) -> PolicyDecision:
        members = self._members(db, cluster)
        row = db.execute(
            "SELECT pinned_action, details FROM policies WHERE cluster = ?", (cluster,)
        ).fetchone()
        pinned = OfflineAction(int(row[0])) if row is not None and row[0] is not None else None
        pin_reason = json.loads(row[1]).get("pin_reason", "") if row is not None else ""
        if not members:
            return decide(cluster, [], None, [], pinned, pin_reason)
        inputs = [
            HostInput(
                name=host_id,
                source=self.registry.profile_for_version(db, version),
                stale=status != "online",
            )
            for host_id, status, version in members
        ]
        # Above POLICY_PAIR_LIMIT hosts the blocking pairs are listed per distinct profile
        # (with an example host each), so a recompute stays cheap in big clusters.
        report = audit(inputs, pair_limit=POLICY_PAIR_LIMIT)
        # The audit's groups cover the processors; freshness is judged by decide().
        processors_ok = len(report.groups) <= 1
        blocking = [] if processors_ok else report.pairs(blocking_only=True)
        return decide(
            cluster,
            [HostState(h, s) for h, s, _ in members],
            "SAVE" if processors_ok else "SHUTDOWN",
            blocking,
            pinned,
            pin_reason,
        )

    def _store(self, db: sqlite3.Connection, decision: PolicyDecision, now: float) -> None:
        old = db.execute("SELECT * FROM policies WHERE cluster = ?", (decision.cluster,)).fetchone()
        if (
            old is not None
            and old["version"] > 0
            and decision.same_as(self._from_row(old).decision)
        ):
            return
        version = (old["version"] if old is not None else 0) + 1
        details = {
            "blocking_pairs": list(decision.blocking_pairs),
            "stale_hosts": list(decision.stale_hosts),
            "host_count": decision.host_count,
            "pin_reason": decision.pin_reason,
        }
        db.execute(
            "INSERT INTO policies (cluster, action, computed_action, pinned_action, reason, details, "
            "version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(cluster) DO UPDATE SET "
            "action = excluded.action, computed_action = excluded.computed_action, "
            "pinned_action = excluded.pinned_action, reason = excluded.reason, "
            "details = excluded.details, version = excluded.version, updated_at = excluded.updated_at",
            (
                decision.cluster,
                str(int(decision.action)),
                str(int(decision.computed)),
                None if decision.pinned is None else str(int(decision.pinned)),
                decision.reason,
                json.dumps(details, sort_keys=True),
                version,
                now,
            ),
        )
        old_action = OfflineAction(int(old["action"])) if old is not None else None
        if old_action != decision.action:
            was = old_action.name if old_action is not None else "none"
            Registry.add_event(
                db,
                now,
                decision.cluster,
                "",
                EventKind.POLICY_CHANGED,
                f"cluster {decision.cluster} offline action {was} -> {decision.action.name}: {decision.reason}",
                old_action=was,
                new_action=decision.action.name,
                reason=decision.reason,
                blocking_pairs=[f"{p['source']}->{p['target']}" for p in decision.blocking_pairs],
                stale_hosts=list(decision.stale_hosts),
            )

    def recompute_in_tx(self, db: sqlite3.Connection, clusters: set[str], now: float) -> None:
        """Registry hook: runs inside the registry's transaction."""
        for cluster in sorted(clusters):
            try:
                decision = self.compute(db, cluster)
            except Exception as exc:  # never block a report; unknown means shutdown
                decision = PolicyDecision(
                    cluster=cluster,
                    action=OfflineAction.SHUTDOWN,
                    computed=OfflineAction.SHUTDOWN,
                    pinned=None,
                    reason=f"policy could not be computed ({exc}): fail-safe SHUTDOWN",
                )
            self._store(db, decision, now)

    @staticmethod
    def _from_row(row: sqlite3.Row) -> StoredPolicy:
        details = json.loads(row["details"])
        decision = PolicyDecision(
            cluster=row["cluster"],
            action=OfflineAction(int(row["action"])),
            computed=OfflineAction(int(row["computed_action"])),
            pinned=None
            if row["pinned_action"] is None
            else OfflineAction(int(row["pinned_action"])),
            reason=row["reason"],
            blocking_pairs=tuple(details.get("blocking_pairs", [])),
            stale_hosts=tuple(details.get("stale_hosts", [])),
            host_count=int(details.get("host_count", 0)),
            pin_reason=details.get("pin_reason", ""),
        )
        return StoredPolicy(decision, row["version"], row["updated_at"])

    def _publish(self, clusters: set[str]) -> None:
        """After a commit: mirror the committed policies of ``clusters`` and wake watchers."""
        with self.store.reading() as db:
            rows = [
                db.execute("SELECT * FROM policies WHERE cluster = ?", (c,)).fetchone()
                for c in sorted(clusters)
            ]
        with self._changed:
            for row in rows:
                if row is None:
                    continue
                stored = self._from_row(row)
                current = self._policies.get(stored.decision.cluster)
                if current is None or stored.version > current.version:
                    self._policies[stored.decision.cluster] = stored
            self._changed.notify_all()

    def _load(self) -> None:
        with self.store.reading() as db:
            rows = db.execute("SELECT * FROM policies").fetchall()
        for row in rows:
            self._policies[row["cluster"]] = self._from_row(row)

    def _recompute_all(self) -> None:
        """At start: the feature table may be newer than the stored decisions."""
        clusters = set(self.registry.clusters()) | set(self._policies)
        if not clusters:
            return
        now = self.registry.clock()
        with self.store.transaction() as db:
            self.recompute_in_tx(db, clusters, now)
        self._publish(clusters)

    # ---- reading and administering -----------------------------------------------------

    def get(self, cluster: str) -> StoredPolicy:
        stored = self._policies.get(cluster)  # lock-free read: entries are replaced whole
        if stored is None:
            raise UnknownClusterError(
                f"no policy for cluster {cluster!r}: no host has joined it; see `cpucompat hosts`"
            )
        return stored

    def all(self) -> list[StoredPolicy]:
        with self._changed:
            return [self._policies[c] for c in sorted(self._policies)]

    def wait_for(self, cluster: str, after_version: int, timeout: float) -> StoredPolicy | None:
        """Block until the cluster's policy is newer than ``after_version`` (or timeout)."""
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    self._closed
                    or (
                        cluster in self._policies
                        and self._policies[cluster].version > after_version
                    )
                ),
                timeout=timeout,
            )
            stored = self._policies.get(cluster)
        if stored is not None and stored.version > after_version:
            return stored
        return None

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def _admin_change(
        self, cluster: str, pinned: OfflineAction | None, reason: str
    ) -> StoredPolicy:
        check_name(cluster, "cluster name")

        def apply(db: sqlite3.Connection, now: float) -> None:
            current = self.compute(db, cluster)
            if current.host_count == 0 and cluster not in self._policies:
                raise UnknownClusterError(f"no host has joined cluster {cluster!r}")
            if pinned is not None:
                check_pin(current, pinned)
            if current.pinned == pinned and current.pin_reason == reason:
                return  # nothing changes: no new version, no duplicate event
            db.execute(
                "INSERT INTO policies (cluster, action, computed_action, pinned_action, reason, "
                "details, version, updated_at) VALUES (?, ?, ?, ?, '', ?, 0, ?) "
                "ON CONFLICT(cluster) DO UPDATE SET pinned_action = excluded.pinned_action, "
                "details = json_set(policies.details, '$.pin_reason', json_extract(excluded.details, '$.pin_reason'))",
                (
                    cluster,
                    str(int(current.action)),
                    str(int(current.computed)),
                    None if pinned is None else str(int(pinned)),
                    json.dumps({"pin_reason": reason}),
                    now,
                ),
            )
            what = f"pinned {pinned.name}" if pinned is not None else "unpinned"
            Registry.add_event(
                db,
                now,
                cluster,
                "",
                EventKind.POLICY_CHANGED,
                f"cluster {cluster} offline action {what} by an administrator"
                + (f": {reason}" if reason else ""),
                pinned=pinned.name if pinned is not None else None,
            )
            self._store(db, self.compute(db, cluster), now)

        now = self.registry.clock()
        with self.store.transaction() as db:
            apply(db, now)
        self._publish({cluster})
        return self.get(cluster)

    def pin(self, cluster: str, action: OfflineAction, reason: str = "") -> StoredPolicy:
        """Pin a colder action; SAVE on a mixed cluster raises PolicyRefusedError."""
        return self._admin_change(cluster, action, reason)

    def unpin(self, cluster: str) -> StoredPolicy:
        return self._admin_change(cluster, None, "")


__all__ = [
    "OfflineAction",
    "PolicyEngine",
    "PolicyRefusedError",
    "StoredPolicy",
    "UnknownClusterError",
    "UnknownHostError",
]
