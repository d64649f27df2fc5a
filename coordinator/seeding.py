"""Filling a rehearsal or benchmark database quickly, through the coordinator's own code.

Ten thousand agent reports one after the other take half an hour, because each one
recomputes its cluster's policy and VM actions inside its own transaction. Here every
report still goes through `Registry.report` (the same validation, decoding, profile rows,
host rows and events as an agent's report), and every VM through the same requirement,
stamp, row and event as `VmRegistry.register` of a VM booted on a host; only the
registry's hooks (each cluster's policy, the per-VM actions) are deferred and run once,
in one unit of work, for every cluster the reports touched. What is stored then is what
the same reports and registrations one by one leave behind (`tests/integration/
test_seeding.py` compares a sample with hosts and VMs registered over gRPC), except that
a cluster's policy version and its policy events count one computation, not one per
join. Only for a coordinator no one else writes to meanwhile (no server running).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cpucompat.agent.errors import InputError
from cpucompat.agent.raw import RawCapture

from .compatibility import Ref
from .domain.hosts import EventKind
from .domain.stamp import make_stamp, stamp_text
from .registry import Registry, add_event, check_name
from .storage.interface import UnitOfWork, VmRow
from .vms import VM_TOPIC, VmRegistry


@dataclass(frozen=True)
class HostReport:
    """One agent's full report, as `Registry.report` takes it."""

    host_id: str
    cluster: str
    capture: RawCapture
    heartbeat_interval: float = 0


@dataclass(frozen=True)
class BootedVm:
    """A VM booted on ``boot_host`` (`vm register NAME --cluster C --boot-host HOST`)."""

    name: str
    cluster: str
    boot_host: str


@contextmanager
def _hooks_deferred(registry: Registry) -> Iterator[set[str]]:
    """While open, the registry's hooks only collect the clusters they would recompute;
    at the end (even after a refused report) they run once for all of them, in one unit of
    work, so the stored policies and VM actions never disagree with the stored hosts."""
    hooks = list(registry.on_change)
    touched: set[str] = set()

    def collect(uow: UnitOfWork, clusters: set[str], now: float) -> None:
        touched.update(clusters)

    registry.on_change[:] = [collect]
    try:
        yield touched
    finally:
        registry.on_change[:] = hooks
        if touched:
            with registry.store.unit_of_work() as uow:
                now = registry.clock()
                for hook in hooks:
                    hook(uow, set(touched), now)


def report_hosts(
    registry: Registry, reports: Iterable[HostReport], each: Callable[[], None] = lambda: None
) -> set[str]:
    """Apply every report through `Registry.report`; the cluster hooks run once at the end.

    Returns the clusters touched; ``each`` is called after every report (a progress line).
    """
    with _hooks_deferred(registry) as touched:
        for report in reports:
            registry.report(
                report.host_id,
                report.cluster,
                report.capture,
                heartbeat_interval=report.heartbeat_interval,
            )
            each()
    return touched


def register_booted(
    vms: VmRegistry, booted: Iterable[BootedVm], each: Callable[[], None] = lambda: None
) -> int:
    """Register new VMs booted on registered hosts in one unit of work, as `VmRegistry.register`
    stores each (requirement of the boot host, no invtsc, no SGX EPC); their actions are
    computed once per cluster. Returns how many were registered; ``each`` is called after
    every VM (a progress line)."""
    registry = vms.registry
    now = registry.clock()
    clusters: set[str] = set()
    count = 0
    with vms.store.unit_of_work() as uow:
        for vm in booted:
            check_name(vm.name, "VM name")
            check_name(vm.cluster, "cluster name")
            record = registry.host(vm.boot_host)
            if record.cluster != vm.cluster:
                raise InputError(
                    f"host {vm.boot_host} is in cluster {record.cluster}, not {vm.cluster}"
                )
            if uow.vms.get(vm.name) is not None:
                raise InputError(f"VM {vm.name} is already registered: register it on its own")
            requirement = vms.decisions.requirement(Ref.host(vm.boot_host)).with_guest(
                invtsc=False, sgx_epc=False
            )
            stamp = stamp_text(make_stamp(requirement, now, vm.boot_host))
            uow.announce(VM_TOPIC, vm.name)
            uow.vms.put(
                VmRow(vm.name, vm.cluster, "host", vm.boot_host, None, stamp, now, now,
                      vm.boot_host, None)
            )  # fmt: skip
            add_event(
                uow,
                now,
                vm.cluster,
                vm.boot_host,
                EventKind.VM_REGISTERED,
                f"VM {vm.name} registered (booted on {vm.boot_host})",
                vm=vm.name,
                mode="host",
            )
            clusters.add(vm.cluster)
            count += 1
            each()
        vms.actions.recompute_in_tx(uow, clusters, now)
    vms.refresh()
    return count
