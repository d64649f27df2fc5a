"""The policy engine: each cluster's offline action, kept right inside every registry change.

`recompute_in_tx` runs in the same unit of work (one transaction) as the join,
leave, status or profile change that caused it, so the stored policy can never
disagree with the stored hosts. Watchers are woken after the commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cpucompat.agent.errors import NotFoundError
from cpucompat.agent.profile import Profile

from .cache import Memo
from .domain.baselines import Baseline
from .domain.cluster_verdicts import ClusterVerdicts
from .domain.hosts import EventKind, HostStatus
from .domain.kvm_offerable import Hypervisor
from .domain.policy import (
    STALE_HOSTS_LISTED,
    OfflineAction,
    PolicyDecision,
    PolicyRefusedError,
    check_pin,
    policy_decision,
)
from .domain.vm_action import has_no_say
from .registry import OnChange, Registry, UnknownHostError, add_event, check_name
from .storage.interface import PolicyRow, Storage, UnitOfWork

POLICY_PAIRS_LISTED = 20  # blocking pairs a policy lists (`audit --cluster` lists all)
CLUSTERS_KEPT = 5_000  # clusters whose distinct profiles and refused pairs are kept
POLICY_TOPIC = "policy"  # announced with the cluster when a new policy version is stored


class Unread:
    """The caller has not read the policy row yet (`PolicyEngine._store`)."""


UNREAD = Unread()


@dataclass(frozen=True)
class StoredPolicy:
    """A decision as stored: with its version and time, what watchers receive."""

    decision: PolicyDecision
    version: int
    updated_at: float


class UnknownClusterError(NotFoundError):
    """No host ever joined that cluster and no policy was pinned for it (NOT_FOUND)."""


class PolicyInput(NamedTuple):
    """One member with a say in its cluster's action (hosts in maintenance left out before).

    A named tuple: a recompute makes one per member on every change of the cluster."""

    name: str
    source: Profile | Baseline
    status: str = "online"  # online / stale / offline
    kind: str = "host"  # "dump" and "model" for what-if members (`whatif`)


def decide(
    cluster: str,
    members: Sequence[PolicyInput],
    pinned: OfflineAction | None,
    pin_reason: str = "",
    hypervisor: Hypervisor = Hypervisor.GENERIC,
    verdicts: ClusterVerdicts | None = None,
) -> PolicyDecision:
    """The cluster's action from the members that have a say: the one rule, shared by the
    stored policy and `cpucompat whatif`.

    ``verdicts``: the cluster's distinct profiles and refused pairs as the previous
    decision left them (the policy engine keeps one per cluster); None starts afresh."""
    if not members:
        return policy_decision(cluster, [], None, [], pinned, pin_reason)
    if verdicts is None:
        verdicts = ClusterVerdicts(hypervisor)
    elif verdicts.hypervisor is not hypervisor:
        raise ValueError("the cluster's verdicts were kept under other rules")
    # One group exactly when no ordered pair of distinct profiles is refused (`audit`).
    # Blocking pairs are listed per distinct profile, each side named by an example host
    # with the number of hosts alike (a mixed cluster of 25 + 25 hosts has 2 pairs, not
    # 1,250), those covering most host pairs first, at most POLICY_PAIRS_LISTED: the row
    # is read and written on every change of the cluster; the audit lists them all.
    found = verdicts.blocking(members, POLICY_PAIRS_LISTED)
    # Freshness is judged by policy_decision().
    return policy_decision(
        cluster,
        members,
        "SAVE" if found.processors_ok else "SHUTDOWN",
        [_named(p) for p in found.listed],
        pinned,
        pin_reason,
        blocking_total=found.total,
    )


def _named(pair: dict[str, Any]) -> dict[str, Any]:
    """A profile pair of the audit as the policy lists it: example hosts as ``source`` and
    ``target`` (what agents, events and the CLI show), the counts and fingerprints beside."""
    return {
        "source": pair["source_example"],
        "target": pair["target_example"],
        "source_hosts": pair["source_hosts"],
        "target_hosts": pair["target_hosts"],
        "source_profile": pair["source"],
        "target_profile": pair["target"],
        "compatible": pair["compatible"],
        "reasons": pair["reasons"],
    }


class PolicyEngine:
    """Computes, stores and publishes every cluster's policy."""

    def __init__(self, store: Storage, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._policies: dict[str, StoredPolicy] = {}
        self._changed = threading.Condition()
        self._closed = False
        # Each cluster's distinct profiles and refused pairs, kept between its changes
        # (any state of one gives right answers: it only saves checks), used by one
        # recompute at a time.
        self._verdicts: Memo[str, ClusterVerdicts] = Memo("cluster verdicts", CLUSTERS_KEPT)
        self._verdicts_lock = threading.Lock()
        # Run in the unit of work of a pin or unpin (the per-VM actions follow the pin).
        self.on_pin: list[OnChange] = []
        # Told (new, previous) after each newer version is mirrored (the metrics count changes).
        self.on_publish: list[Callable[[StoredPolicy, StoredPolicy | None], None]] = []
        registry.on_change.append(self.recompute_in_tx)
        self._recompute_all()

    # ---- computing -------------------------------------------------------------------

    def compute(self, uow: UnitOfWork, cluster: str) -> PolicyDecision:
        # The cluster's lock first, then its members: a writer that committed a member
        # change before we got the lock is in what we read (several coordinators).
        return self._compute(uow, cluster, uow.policies.get(cluster, for_update=True))

    def _compute(self, uow: UnitOfWork, cluster: str, row: PolicyRow | None) -> PolicyDecision:
        """The decision from the cluster's stored members and its locked policy ``row``."""
        # A host in maintenance has no say: neither its processor nor its silence counts.
        # (A status is a StrEnum: it is its own text, without the enum's slow `.value`.)
        members = [
            PolicyInput(h.host_id, self._profile(uow, h.host_id, h.profile_version), h.status)
            for h in uow.hosts.members(cluster)
            if not (h.maintenance and has_no_say(h.maintenance, h.status == HostStatus.ONLINE))
        ]
        pinned = (
            OfflineAction(row.pinned_action)
            if row is not None and row.pinned_action is not None
            else None
        )
        pin_reason = str(row.details.get("pin_reason", "")) if row is not None else ""
        with self._verdicts_lock:
            verdicts = self._verdicts.get(cluster)
            self._verdicts.discard(cluster)  # kept again only after a decision that completed
            verdicts = verdicts or ClusterVerdicts()
            decision = decide(cluster, members, pinned, pin_reason, verdicts=verdicts)
            if members:
                self._verdicts.put(cluster, verdicts)
        return decision

    def _profile(self, uow: UnitOfWork, host_id: str, version: int) -> Profile:
        """A member's decoded profile: the mirror's when it holds that very version (a
        version's content never changes), else the registry's (cached, or read)."""
        known = self.registry.find(host_id)
        if known is not None and known.profile_version == version:
            return known.profile
        return self.registry.profile_for_version(uow, version)

    def _store(
        self,
        uow: UnitOfWork,
        decision: PolicyDecision,
        now: float,
        old: PolicyRow | Unread | None = UNREAD,
    ) -> PolicyRow:
        """Store ``decision`` as a new version unless it equals the stored one; returns the
        row now stored. ``old``: the row this unit of work already read (and locked)."""
        if isinstance(old, Unread):
            old = uow.policies.get(decision.cluster, for_update=True)
        if old is not None and old.version > 0 and decision.same_as(self._from_row(old).decision):
            return old
        version = (old.version if old is not None else 0) + 1
        uow.announce(POLICY_TOPIC, decision.cluster)
        details = {
            "blocking_pairs": list(decision.blocking_pairs),
            "stale_hosts": list(decision.stale_hosts),
            "stale_total": decision.stale_total,
            "blocking_total": decision.blocking_total,
            "host_count": decision.host_count,
            "pin_reason": decision.pin_reason,
        }
        new = PolicyRow(
            cluster=decision.cluster,
            action=int(decision.action),
            computed_action=int(decision.computed),
            pinned_action=None if decision.pinned is None else int(decision.pinned),
            reason=decision.reason,
            details=details,
            version=version,
            updated_at=now,
        )
        uow.policies.put(new)
        old_action = OfflineAction(old.action) if old is not None else None
        if old_action != decision.action:
            was = old_action.name if old_action is not None else "none"
            add_event(
                uow,
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
        return new

    def recompute_in_tx(self, uow: UnitOfWork, clusters: set[str], now: float) -> None:
        """Registry hook: runs inside the registry's unit of work; watchers hear after commit.

        Each cluster's policy row is read (and locked) once; after the commit the mirror
        takes the rows this unit of work stored or found current, without reading them
        again (a big mixed cluster's blocking pairs are hundreds of KiB of JSON)."""
        rows: list[PolicyRow] = []
        for cluster in sorted(clusters):
            row = uow.policies.get(cluster, for_update=True)
            try:
                decision = self._compute(uow, cluster, row)
            except Exception as exc:  # never block a report; unknown means shutdown
                decision = PolicyDecision(
                    cluster=cluster,
                    action=OfflineAction.SHUTDOWN,
                    computed=OfflineAction.SHUTDOWN,
                    pinned=None,
                    reason=f"policy could not be computed ({exc}): fail-safe SHUTDOWN",
                )
            rows.append(self._store(uow, decision, now, row))
        uow.on_commit(lambda: self._mirror(rows))

    def touch(self, uow: UnitOfWork, cluster: str, now: float) -> None:
        """A new policy version without a new decision: the cluster's per-VM actions
        changed, and watchers (agents) must hear of it."""
        # The version alone: a mixed cluster's details (blocking pairs) run to megabytes.
        if uow.policies.bump_version(cluster, now) is None:
            return
        # Other coordinators' watchers must hear of it too (they mirror the VM actions first).
        uow.announce(POLICY_TOPIC, cluster)
        uow.on_commit(lambda: self._publish({cluster}))

    @staticmethod
    def _from_row(row: PolicyRow) -> StoredPolicy:
        details = row.details
        decision = PolicyDecision(
            cluster=row.cluster,
            action=OfflineAction(row.action),
            computed=OfflineAction(row.computed_action),
            pinned=None if row.pinned_action is None else OfflineAction(row.pinned_action),
            reason=row.reason,
            blocking_pairs=tuple(details.get("blocking_pairs", [])),
            blocking_total=int(
                details.get("blocking_total", len(details.get("blocking_pairs", [])))
            ),
            stale_hosts=tuple(details.get("stale_hosts", [])[:STALE_HOSTS_LISTED]),
            # Rows stored before the bound name every stale host and no total.
            stale_total=int(details.get("stale_total", len(details.get("stale_hosts", [])))),
            host_count=int(details.get("host_count", 0)),
            pin_reason=details.get("pin_reason", ""),
        )
        return StoredPolicy(decision, row.version, row.updated_at)

    def _publish(self, clusters: set[str]) -> None:
        """After a commit: mirror the committed policies of ``clusters`` and wake watchers."""
        with self.store.read() as uow:
            rows = [uow.policies.get(c) for c in sorted(clusters)]
        self._mirror([row for row in rows if row is not None])

    def _mirror(self, rows: list[PolicyRow]) -> None:
        """Mirror committed policy rows (an older version never replaces a newer one) and
        wake watchers."""
        with self._changed:
            for row in rows:
                stored = self._from_row(row)
                current = self._policies.get(stored.decision.cluster)
                if current is None or stored.version > current.version:
                    self._policies[stored.decision.cluster] = stored
                    for hook in self.on_publish:
                        hook(stored, current)
            self._changed.notify_all()

    def refresh(self, cluster: str | None = None) -> None:
        """Another coordinator stored a new policy of ``cluster`` (None: maybe of any):
        mirror it and wake this coordinator's watchers."""
        if cluster is not None:
            self._publish({cluster})
            return
        with self.store.read() as uow:
            clusters = {row.cluster for row in uow.policies.all()}
        self._publish(clusters)

    def _recompute_all(self) -> None:
        """At start: the feature table may be newer than the stored decisions. Every
        cluster's policy is read once, here (the mirror takes the rows recomputed)."""
        with self.store.read() as uow:
            stored = uow.policies.clusters()
        clusters = set(self.registry.clusters()) | set(stored)
        if not clusters:
            return
        now = self.registry.clock()
        with self.store.unit_of_work() as uow:
            self.recompute_in_tx(uow, clusters, now)

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

        def apply(uow: UnitOfWork, now: float) -> None:
            current = self.compute(uow, cluster)
            if current.host_count == 0 and cluster not in self._policies:
                raise UnknownClusterError(f"no host has joined cluster {cluster!r}")
            if pinned is not None:
                check_pin(current, pinned)
            if current.pinned == pinned and current.pin_reason == reason:
                return  # nothing changes: no new version, no duplicate event
            uow.policies.set_pin(
                cluster,
                None if pinned is None else int(pinned),
                reason,
                initial=PolicyRow(
                    cluster=cluster,
                    action=int(current.action),
                    computed_action=int(current.computed),
                    pinned_action=None,
                    reason="",
                    version=0,
                    updated_at=now,
                ),
            )
            what = f"pinned {pinned.name}" if pinned is not None else "unpinned"
            add_event(
                uow,
                now,
                cluster,
                "",
                EventKind.POLICY_CHANGED,
                f"cluster {cluster} offline action {what} by an administrator"
                + (f": {reason}" if reason else ""),
                pinned=pinned.name if pinned is not None else None,
            )
            self._store(uow, self.compute(uow, cluster), now)
            for hook in self.on_pin:
                hook(uow, {cluster}, now)

        now = self.registry.clock()
        with self.store.unit_of_work() as uow:
            apply(uow, now)
            uow.on_commit(lambda: self._publish({cluster}))
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
