"""Each registered VM's own offline action, kept right inside every change that can alter it.

`recompute_in_tx` runs in the unit of work of a host's join, leave, status, profile
or maintenance change (as a registry hook), of a pin, and of a VM's registration,
move or reboot, so a stored VM action never disagrees with the stored hosts. Only
the VMs of the touched clusters are recomputed, and cheaply: stamps are parsed once
(a memo of `cache.py`), the members' target views are the cached ones except for the
host the change itself rewrites, and each distinct requirement is checked once per
member (`domain.vm_action.vm_actions`; the verdicts themselves are the compatibility
engine's interned ones). One host's profile change among 10,000 hosts and 10,000 VMs
costs a few milliseconds of processor time (benchmarks/coordinator.py);
`tests/integration/test_vm_actions_incremental.py` holds the result equal to a full
recompute. Each changed action is an event; the cluster's policy gets a new version so
agents watching it hear of their VMs' actions.
"""

from __future__ import annotations

import threading

from .cache import memo
from .compatibility import CompatibilityService, host_view
from .domain.compat import TargetView
from .domain.hosts import EventKind, HostRecord, HostStatus
from .domain.policy import OfflineAction
from .domain.requirement import Requirement
from .domain.stamp import load_stamp
from .domain.vm_action import ClusterVm, Member, VmAction, has_no_say, vm_actions
from .policy import PolicyEngine
from .registry import Registry, add_event
from .storage.interface import HostRow, Storage, UnitOfWork, VmRow

REQUIREMENT_CACHE_SIZE = 100_000
"""Distinct stamps remembered: one per registered VM at the benchmarked scale, with room."""


@memo("VM requirements by stamp", REQUIREMENT_CACHE_SIZE)
def requirement_of_stamp(stamp: str) -> Requirement:
    """A stored stamp's requirement, parsed once (stamps never change: a reboot is a new one)."""
    return load_stamp(stamp)


class VmActions:
    """Computes, stores and mirrors every registered VM's offline action."""

    def __init__(
        self,
        store: Storage,
        registry: Registry,
        decisions: CompatibilityService,
        policies: PolicyEngine,
    ) -> None:
        self.store = store
        self.registry = registry
        self.decisions = decisions
        self.policies = policies
        self._lock = threading.Lock()
        self._actions: dict[str, VmAction] = {}
        # First among the registry's hooks: the policy engine's own recompute then sees
        # the version this one may add, and its watchers wake after this mirror is updated.
        registry.on_change.insert(0, self.recompute_in_tx)
        policies.on_pin.append(self.recompute_in_tx)
        with store.read() as uow:
            rows = uow.vms.all()
        for row in rows:
            if row.offline_action is not None:
                self._actions[row.name] = _stored(row)
        clusters = {row.cluster for row in rows}
        if clusters:  # at start: the feature table may be newer than the stored actions
            with store.unit_of_work() as uow:
                self.recompute_in_tx(uow, clusters, registry.clock())

    # ---- reading ------------------------------------------------------------------------

    def get(self, name: str) -> VmAction | None:
        return self._actions.get(name)

    def all(self) -> list[VmAction]:
        """Every computed action (the metrics count them by action)."""
        return list(self._actions.values())

    def on_host(self, host_id: str) -> list[VmAction]:
        """The actions of the VMs running on ``host_id`` (what its agent applies)."""
        actions = list(self._actions.values())
        return sorted((a for a in actions if a.current_host == host_id), key=lambda a: a.vm)

    def forget(self, name: str) -> None:
        """After a VM's removal committed."""
        with self._lock:
            self._actions.pop(name, None)

    def refresh(self, cluster: str | None = None) -> None:
        """Another coordinator stored the VM actions of ``cluster`` (None: maybe of any).

        Its unit of work announced the cluster's new policy version with them, so this
        runs before the policy engine wakes this coordinator's watchers (`server`), and
        they send the stored actions, not this mirror's old ones.
        """
        with self.store.read() as uow:
            rows = uow.vms.all() if cluster is None else uow.vms.in_cluster(cluster)
        fresh = {row.name: _stored(row) for row in rows if row.offline_action is not None}
        with self._lock:
            stale = [
                name
                for name, action in self._actions.items()
                if name not in fresh and (cluster is None or action.cluster == cluster)
            ]
            for name in stale:
                del self._actions[name]
            self._actions.update(fresh)

    def refresh_vm(self, name: str) -> None:
        """Another coordinator changed VM ``name``: mirror its stored action (or its absence)."""
        with self.store.read() as uow:
            row = uow.vms.get(name)
        with self._lock:
            if row is None or row.offline_action is None:
                self._actions.pop(name, None)
            else:
                self._actions[name] = _stored(row)

    # ---- computing ----------------------------------------------------------------------

    def _members(self, uow: UnitOfWork, cluster: str) -> list[Member]:
        members = []
        for row in uow.hosts.in_cluster(cluster):
            online = row.status == HostStatus.ONLINE
            members.append(
                Member(
                    host_id=row.host_id,
                    online=online,
                    maintenance=has_no_say(row.maintenance, online),
                    # No stored profile: it cannot accept anything (a refusal, fail-safe).
                    view=self._view(uow, row),
                )
            )
        return members

    def _view(self, uow: UnitOfWork, row: HostRow) -> TargetView | None:
        """The host's target view as this unit of work stores it.

        The mirrored record's cached view when the row is what the mirror holds (the
        view depends on nothing else); otherwise (the host this unit of work changes)
        made afresh from the row and never cached: caching it would name a record the
        mirror does not hold, and the cache would drop every answer about the host."""
        mirrored = self.registry.find(row.host_id)
        if mirrored is not None and _mirrors(mirrored, row):
            return self.decisions.host_view(mirrored)
        record = self.registry.record_of(uow, row)
        return None if record is None else host_view(record, self.decisions.hypervisor)

    def compute(self, uow: UnitOfWork, cluster: str) -> list[VmAction]:
        """The action of every VM registered in ``cluster``, from what the unit of work holds."""
        rows = uow.vms.in_cluster(cluster)
        if not rows:
            return []
        members = self._members(uow, cluster)
        stored_pin = uow.policies.pinned_action(cluster)  # the pin alone: details can be MiBs
        pinned = None if stored_pin is None else OfflineAction(stored_pin)
        vms = [
            ClusterVm(row.name, requirement_of_stamp(row.requirement), row.current_host)
            for row in rows
        ]
        return vm_actions(cluster, vms, members, pinned)

    def recompute_in_tx(self, uow: UnitOfWork, clusters: set[str], now: float) -> None:
        """Store and log every VM action of ``clusters`` that changed; mirror after commit."""
        changed: dict[str, VmAction] = {}
        for cluster in sorted(clusters):
            rows = {row.name: row for row in uow.vms.in_cluster(cluster)}
            if not rows:
                continue
            touched = False
            for new in self.compute(uow, cluster):
                row = rows[new.vm]
                if self._actions.get(new.vm) != new:
                    changed[new.vm] = new  # its action, reason or host: watchers hear of it
                    touched = True
                # What is stored and sent: the action, the first refusing hosts and their
                # count (the action itself was decided from every member).
                stored = (row.offline_action, row.refusing_hosts, row.refusing_total)
                fresh = (int(new.action), new.refusing_hosts, new.refusing_total)
                if stored == fresh and row.action_reason == new.reason:
                    continue
                uow.vms.set_action(
                    new.vm, int(new.action), new.refusing_hosts, new.reason, new.refusing_total
                )
                touched = True
                if stored == fresh:
                    continue  # only the wording changed: stored, not logged
                was = (
                    "none" if row.offline_action is None else OfflineAction(row.offline_action).name
                )
                add_event(
                    uow,
                    now,
                    cluster,
                    "",
                    EventKind.VM_ACTION_CHANGED,
                    f"VM {new.vm} offline action {was} -> {new.action.name}: {new.reason}",
                    vm=new.vm,
                    old_action=was,
                    new_action=new.action.name,
                    refusing_hosts=list(new.refusing_hosts),
                    refusing_hosts_total=new.refusing_total,
                    reason=new.reason,
                )
            if touched:
                self.policies.touch(uow, cluster, now)
        if changed:
            uow.on_commit(lambda: self._mirror(changed))

    def _mirror(self, changed: dict[str, VmAction]) -> None:
        with self._lock:
            self._actions.update(changed)


def _mirrors(record: HostRecord, row: HostRow) -> bool:
    """Whether a mirrored record is the stored row, as far as its target view goes."""
    return (record.profile_version, record.status, record.replayed, record.cluster) == (
        row.profile_version,
        row.status,
        row.replayed,
        row.cluster,
    )


def _stored(row: VmRow) -> VmAction:
    assert row.offline_action is not None
    return VmAction(
        vm=row.name,
        cluster=row.cluster,
        action=OfflineAction(row.offline_action),
        refusing_hosts=row.refusing_hosts,
        reason=row.action_reason,
        current_host=row.current_host,
        refusing_total=row.refusing_total,
    )
