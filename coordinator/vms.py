"""VMs and their fail-over plans.

A VM's requirement is fixed when it boots: registering it again after a
live move keeps the boot host's requirement unless the caller says the
guest was restarted (`rebooted`), because the guest still runs the code
paths it chose at boot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cpucompat.agent.errors import InputError, NotFoundError

from .baseline_pins import PINNED, BaselinePins
from .cache import Region
from .compatibility import CompatibilityService, Ref
from .domain.compat import Verdict, check, unknown_host
from .domain.hosts import EventKind, HostRecord
from .domain.libvirt_cpu import DomainCpu, LibvirtCpuError, parse_domain_cpu
from .domain.policy import OfflineAction
from .domain.requirement import Requirement
from .domain.sides import requirement_of_domain
from .domain.stamp import load_stamp, make_stamp, stamp_text
from .domain.vm_action import in_maintenance
from .policy import PolicyEngine
from .registry import Registry, UnknownHostError, add_event, check_name
from .storage.interface import Storage, VmRow
from .vm_actions import VmActions

VM_TOPIC = "vm"  # announced with the VM's name when a unit of work changes it


class UnknownVmError(NotFoundError):
    """No VM of that name is registered (NOT_FOUND)."""


@dataclass(frozen=True)
class VmRecord:
    name: str
    cluster: str
    mode: str  # "host" or "baseline"
    boot_host: str | None
    baseline: str | None
    requirement: Requirement
    registered_at: float
    booted_at: float
    current_host: str | None
    cpu_definition: str | None = None  # the libvirt <cpu> it booted with, one line

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cluster": self.cluster,
            "mode": self.mode,
            "boot_host": self.boot_host,
            "baseline": self.baseline,
            "current_host": self.current_host,
            "registered_at": self.registered_at,
            "booted_at": self.booted_at,
            "cpu_definition": self.cpu_definition,
            "requirement": self.requirement.to_json(),
        }


@dataclass(frozen=True)
class FailoverPlan:
    vm: str
    to_host: str
    action: OfflineAction
    verdict: Verdict
    reason: str
    cluster_action: OfflineAction | None

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "to_host": self.to_host,
            "action": self.action.name,
            "hyperv_offline_action": int(self.action),
            "reason": self.reason,
            "cluster_action": self.cluster_action.name if self.cluster_action is not None else None,
            "verdict": self.verdict.to_json(),
        }


class VmRegistry:
    """Registered VMs, stored beside the hosts in the coordinator's database."""

    def __init__(
        self,
        store: Storage,
        registry: Registry,
        decisions: CompatibilityService,
        policies: PolicyEngine,
        pins: BaselinePins | None = None,
    ) -> None:
        self.pins = pins  # `--baseline cluster`: the cluster's pinned baseline
        self.store = store
        self.registry = registry
        self.decisions = decisions
        self.policies = policies
        self.actions = VmActions(store, registry, decisions, policies)
        with store.read() as uow:
            rows = uow.vms.all()
        # The mirror of the stored VMs (state, not a cache: it is the table, refreshed
        # after every change this class makes).
        self._vms: dict[str, VmRecord] = {row.name: self._from_row(row) for row in rows}

    @staticmethod
    def _from_row(row: VmRow) -> VmRecord:
        return VmRecord(
            name=row.name,
            cluster=row.cluster,
            mode=row.mode,
            boot_host=row.boot_host,
            baseline=row.baseline,
            requirement=load_stamp(row.requirement),
            registered_at=row.registered_at,
            booted_at=row.booted_at,
            current_host=row.current_host,
            cpu_definition=row.cpu_definition,
        )

    def refresh(self, name: str | None = None) -> None:
        """Another coordinator changed VM ``name`` (None: maybe any) in the database."""
        if name is not None:
            self._refresh(name)
            self.actions.refresh_vm(name)
            return
        self.actions.refresh()
        with self.store.read() as uow:
            rows = {row.name: row for row in uow.vms.all()}
        for gone in set(self._vms) - set(rows):
            self._vms.pop(gone, None)
            self.registry.cache.forget_vm(gone)
        for vm_name, row in rows.items():
            self._vms[vm_name] = self._from_row(row)
            self.registry.cache.forget_vm(vm_name)

    def _refresh(self, name: str) -> None:
        with self.store.read() as uow:
            row = uow.vms.get(name)
        if row is None:
            self._vms.pop(name, None)
        else:
            self._vms[name] = self._from_row(row)
        self.registry.cache.forget_vm(name)

    def get(self, name: str) -> VmRecord:
        """From memory: the table changes only through this class, which refreshes it."""
        record = self._vms.get(name)
        if record is None:
            raise UnknownVmError(f"no VM {name!r} is registered; see `cpucompat vm list`")
        return record

    def all(self, cluster: str | None = None) -> list[VmRecord]:
        records = sorted(self._vms.values(), key=lambda r: r.name)
        return [r for r in records if not cluster or r.cluster == cluster]

    def register(
        self,
        name: str,
        cluster: str,
        *,
        boot_host: str | None = None,
        baseline: str | None = None,
        vendor: str | None = None,
        rebooted: bool = False,
        invtsc: bool = False,
        sgx_epc: bool = False,
        libvirt_xml: str | None = None,
    ) -> tuple[VmRecord, bool]:
        """Register or update a VM; returns (record, whether its requirement was (re)captured).

        ``libvirt_xml`` (a domain's ``virsh dumpxml``) defines the requirement by its
        ``<cpu>`` (`libvirt_cpu`): host modes need ``boot_host``, a custom CPU does not.
        """
        check_name(name, "VM name")
        check_name(cluster, "cluster name")
        domain: DomainCpu | None = None
        if libvirt_xml is not None:
            if baseline:
                raise InputError(
                    "--libvirt-xml defines the VM's CPU itself: drop --baseline (a custom "
                    "<cpu> names its QEMU model)"
                )
            if invtsc or sgx_epc:
                raise InputError(
                    "--libvirt-xml says whether the guest has invtsc (<feature name='invtsc'/>) "
                    "and an SGX EPC (<memory model='sgx-epc'>): drop --invtsc/--sgx-epc"
                )
            domain = parse_domain_cpu(libvirt_xml, f"VM {name}'s domain XML")
            invtsc, sgx_epc = domain.invtsc, domain.sgx_epc
            if domain.needs_boot_host and not boot_host:
                raise LibvirtCpuError(
                    f"VM {name}'s domain XML has <cpu mode='{domain.mode}'>, the boot host's CPU: "
                    "name the host it booted on (--boot-host HOST)"
                )
        elif bool(boot_host) == bool(baseline):
            raise InputError("give exactly one of --boot-host HOST or --baseline NAME")
        now = self.registry.clock()
        try:
            existing: VmRecord | None = self.get(name)
        except UnknownVmError:
            existing = None
        boot_profile = None
        if boot_host:
            record = self.registry.host(boot_host)
            boot_profile = record.profile
            if record.cluster != cluster:
                raise InputError(f"host {boot_host} is in cluster {record.cluster}, not {cluster}")
            if domain is not None and domain.mode == "host-passthrough" and not domain.migratable:
                invtsc = invtsc and record.profile.invariant_tsc
            if invtsc and not record.profile.invariant_tsc:
                raise InputError(
                    f"--invtsc: host {boot_host} has no invariant TSC, so no guest booted there "
                    "has one; drop --invtsc"
                )
            if sgx_epc and "sgx" not in record.profile.features:
                raise InputError(
                    f"--sgx-epc: host {boot_host} has no SGX (or it is disabled in the firmware), "
                    "so no VM there has an enclave page cache; drop --sgx-epc"
                )
        recapture = existing is None or rebooted
        definition = domain.summary() if domain is not None else None
        if (
            existing is not None
            and not rebooted
            and domain is not None
            and existing.cpu_definition != definition
        ):
            raise InputError(
                f"VM {name} booted with {existing.cpu_definition or 'no libvirt CPU definition'}; "
                f"a new one ({definition}) takes effect only after the guest restarts: pass "
                "--rebooted if it did"
            )
        if (
            existing is not None
            and not rebooted
            and (existing.requirement.invariant_tsc, existing.requirement.sgx_epc)
            != (invtsc, sgx_epc)
        ):
            raise InputError(
                f"VM {name} booted with invtsc={existing.requirement.invariant_tsc} and "
                f"sgx-epc={existing.requirement.sgx_epc}; a new configuration takes effect only "
                "after the guest restarts: pass --rebooted if it did"
            )
        if (
            existing is not None
            and not rebooted
            and baseline is not None
            and existing.baseline != baseline
        ):
            was = (
                f"baseline {existing.baseline}"
                if existing.baseline
                else f"host {existing.boot_host}"
            )
            raise InputError(
                f"VM {name} booted with the requirement of {was}; a new baseline takes effect only "
                "after the guest restarts: pass --rebooted if it did"
            )
        if recapture:
            if domain is not None:
                requirement = requirement_of_domain(domain, boot_profile, boot_host or name)
                mode, base = "libvirt", None
            elif boot_host:
                requirement = self.decisions.requirement(Ref.host(boot_host))
                mode, base = "host", None
            else:
                assert baseline is not None
                if baseline == PINNED and self.pins is not None:
                    requirement = self.pins.require(cluster).requirement
                else:
                    requirement = self.decisions.requirement(Ref.model(baseline, vendor))
                mode, base = "baseline", baseline
            # A baseline VM names no boot host, so an invtsc one has no known rate: only
            # targets that scale TSC take it (TSC_FREQUENCY_UNKNOWN elsewhere).
            requirement = requirement.with_guest(invtsc=invtsc, sgx_epc=sgx_epc)
            stamp = stamp_text(
                make_stamp(requirement, now, boot_host or baseline or definition or "")
            )
            registered_at = existing.registered_at if existing else now
            row = VmRow(
                name, cluster, mode, boot_host, base, stamp, registered_at, now, boot_host, definition
            )  # fmt: skip
            with self.store.unit_of_work() as uow:
                uow.announce(VM_TOPIC, name)
                uow.vms.put(row)
                self.actions.recompute_in_tx(
                    uow, {cluster} | ({existing.cluster} if existing else set()), now
                )
                what = f"booted on {boot_host}" if boot_host else f"baseline {baseline}"
                if definition is not None:
                    what = definition + (f", booted on {boot_host}" if boot_host else "")
                add_event(
                    uow,
                    now,
                    cluster,
                    boot_host or "",
                    EventKind.VM_REGISTERED,
                    f"VM {name} registered ({what})"
                    + (" after a reboot" if rebooted and existing else ""),
                    vm=name,
                    mode=mode,
                )
        else:
            # A move without a reboot (another host, even another cluster): the guest still
            # needs the processor it booted on, so only its whereabouts change.
            assert existing is not None
            with self.store.unit_of_work() as uow:
                uow.announce(VM_TOPIC, name)
                uow.vms.move(name, cluster, boot_host or None)
                self.actions.recompute_in_tx(uow, {cluster, existing.cluster}, now)
        self._refresh(name)
        return self.get(name), recapture

    def remove(self, name: str) -> VmRecord:
        record = self.get(name)
        now = self.registry.clock()
        with self.store.unit_of_work() as uow:
            uow.announce(VM_TOPIC, name)
            uow.vms.delete(name)
            add_event(
                uow, now, record.cluster, "", EventKind.VM_REMOVED, f"VM {name} removed", vm=name
            )
            if self.actions.get(name) is not None:
                self.policies.touch(uow, record.cluster, now)  # its host's agent forgets it
        self.actions.forget(name)
        self._refresh(name)
        return record

    def targets(self, name: str) -> list[tuple[str, Verdict]]:
        """Every host of the VM's cluster with the verdict on the VM's requirement."""
        vm = self.get(name)
        out = []
        for record in self.registry.hosts(vm.cluster):
            if record.host_id == vm.current_host:
                continue
            verdict = check(vm.requirement, self.decisions.host_view(record))
            if record.in_maintenance:
                verdict = in_maintenance(verdict, record.host_id, record.maintenance_reason)
            out.append((record.host_id, verdict))
        out.sort(key=lambda item: (not item[1].compatible, item[0]))
        return out

    def plan(self, name: str, to_host: str) -> FailoverPlan:
        """SAVE only when the target accepts the VM's boot requirement, else SHUTDOWN.

        Cached per (VM boot, target version and state, cluster policy version): a plan
        changes with nothing else. The registry drops a changed target's plans, a VM's
        change drops its own."""
        vm = self.get(name)
        target = self.registry.find(to_host)
        key = self._plan_key(vm, target)
        if target is None or key is None:
            return self._plan(vm, to_host)
        cache = self.registry.cache
        plan: FailoverPlan | None = cache.get(Region.PLAN, key)
        if plan is None:
            plan = cache.put(Region.PLAN, key, self._plan(vm, to_host), [to_host], [name])
            if self.registry.find(to_host) is not target:
                cache.forget_host(to_host)
            if self._vms.get(name) is not vm:
                cache.forget_vm(name)
        return plan

    def plan_key(self, name: str, to_host: str) -> tuple[object, ...] | None:
        """The cache key of `plan` (None when nothing is cached), for `AnswerCache.form`."""
        vm = self._vms.get(name)
        return None if vm is None else self._plan_key(vm, self.registry.find(to_host))

    def _plan_key(self, vm: VmRecord, target: HostRecord | None) -> tuple[object, ...] | None:
        if target is None:
            return None
        try:
            policy_version: int | None = self.policies.get(vm.cluster).version
        except NotFoundError:  # no policy for the cluster yet: the plan says so
            policy_version = None
        return (
            vm.name,
            vm.booted_at,
            vm.cluster,
            target.host_id,
            target.profile_version,
            target.status,
            target.replayed,
            target.cluster,
            target.maintenance,  # a host in maintenance is no target
            policy_version,
        )

    def _plan(self, vm: VmRecord, to_host: str) -> FailoverPlan:
        name = vm.name
        try:
            target = self.registry.host(to_host)
            verdict = check(vm.requirement, self.decisions.host_view(target))
        except UnknownHostError:
            verdict = unknown_host(to_host)
            target = None
        try:
            decision = self.policies.get(vm.cluster).decision
            cluster_action: OfflineAction | None = decision.action
            pinned = decision.pinned
        except LookupError:
            cluster_action, pinned = None, None
        if target is not None and target.in_maintenance:
            verdict = in_maintenance(verdict, to_host, target.maintenance_reason)
            action, reason = (
                OfflineAction.SHUTDOWN,
                f"{to_host} is in maintenance: no fail-over target",
            )
        elif not verdict.compatible:
            action, reason = (
                OfflineAction.SHUTDOWN,
                f"{to_host} cannot restore {name}'s saved state: {verdict.summary}",
            )
        elif target is not None and target.cluster != vm.cluster:
            action, reason = (
                OfflineAction.SHUTDOWN,
                f"{to_host} is in cluster {target.cluster}, not {vm.cluster}",
            )
        elif pinned is not None and pinned != OfflineAction.SAVE:
            action, reason = (
                pinned,
                f"cluster {vm.cluster} is pinned to {pinned.name} by an administrator",
            )
        else:
            action, reason = (
                OfflineAction.SAVE,
                f"{to_host} accepts the requirement {name} booted with",
            )
        return FailoverPlan(name, to_host, action, verdict, reason, cluster_action)
