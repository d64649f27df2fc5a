"""What adding or removing hosts would do to a cluster, computed and never stored.

`cpucompat whatif` asks before hardware is racked or retired: the cluster's action,
its common baseline and every registered VM's own action, before and after the
change. Nothing here writes: the hosts, VMs and pins come from the coordinator's
mirrors, and every answer comes from the rules the stored state is kept by (one
decision path): `policy.decide` for the cluster's action, `domain.vm_action` for
each VM (so `compat.check` decides every pair), `domain.audit` through
`ClusterBaseline.from_audit` for the baseline, `baseline_pins` for hosts below a pin.

As in the stored state, a host in maintenance has no say, a stale or offline host
refuses (fail-safe), and an administrator's colder pin wins. An added dump or model
counts as an online host outside maintenance. A VM "regains SAVE after a power
cycle" when it is not SAVE before and the requirement it would boot with after the
change is accepted by every other host that counts: a VM booted on a host boots on
that host again (under the new cluster baseline when that host is removed); a VM
registered under the cluster's pinned baseline boots under the pin (a pin does not
move by itself); any other baseline or libvirt VM boots under the new cluster
baseline (what `cpucompat baseline --cluster C` would write after the change).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from cpucompat.agent.errors import InputError
from cpucompat.agent.profile import Profile

from .baseline_pins import PINNED, BaselinePins, Pin, measure_host
from .compatibility import CompatibilityService, Ref, domain_side
from .domain.audit import HostInput, audit
from .domain.baselines import Baseline
from .domain.cluster_baseline import ClusterBaseline, ClusterBaselineError, pinned_requirement
from .domain.hosts import HostRecord, HostStatus
from .domain.kvm_offerable import Hypervisor, view_label
from .domain.policy import OfflineAction, PolicyDecision
from .domain.requirement import Requirement
from .domain.sides import target_of
from .domain.vm_action import Member, VmAction, has_no_say, vm_action
from .policy import PolicyEngine, PolicyInput, UnknownClusterError, decide
from .registry import Registry, UnknownHostError, check_name
from .vms import VmRecord, VmRegistry

MAX_CHANGES = 1000
"""Added plus removed hosts in one what-if (a rack is far fewer; a bound keeps it cheap)."""


@dataclass(frozen=True)
class AddedHost:
    """A dump or model the what-if adds, as an online host outside maintenance."""

    label: str
    kind: str  # "dump" or "model"
    source: Profile | Baseline


@dataclass(frozen=True)
class ClusterState:
    """The cluster before or after the change, as the stored state would have it."""

    policy: PolicyDecision
    hosts: tuple[str, ...]  # the members with a say (outside maintenance), sorted
    baseline: ClusterBaseline | None
    baseline_note: str  # why there is no baseline; empty when there is one
    below_pinned_baseline: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        base = self.baseline
        return {
            "policy": self.policy.to_json(),
            "action": self.policy.action.name,
            "hosts": list(self.hosts),
            "baseline": None if base is None else baseline_json(base),
            "baseline_note": self.baseline_note,
            "below_pinned_baseline": list(self.below_pinned_baseline),
        }


def baseline_json(base: ClusterBaseline) -> dict[str, Any]:
    """The baseline's decision fields and its nearest names (no QEMU table needed)."""
    from .domain.baselines import nearest_level, nearest_microarchitecture
    from .domain.requirement import component_names

    return {
        "vendor": base.vendor,
        "features": sorted(base.features),
        "feature_count": len(base.features),
        "xsave_components": list(component_names(base.xsave_mask)),
        "xsave_mask": base.xsave_mask,
        "physical_bits": base.physical_bits,
        "x86_64_level": nearest_level(base.features),
        "microarchitecture": nearest_microarchitecture(base.features, base.vendor),
    }


@dataclass(frozen=True)
class VmWhatIf:
    """One registered VM's action before and after the change, and after a power cycle."""

    vm: str
    mode: str
    before: VmAction
    after: VmAction
    power_cycle: VmAction | None  # None: no requirement to boot with (no common baseline)
    power_cycle_into: str

    @property
    def loses_save(self) -> bool:
        return self.before.action == OfflineAction.SAVE and self.after.action != OfflineAction.SAVE

    @property
    def regains_save(self) -> bool:
        """Not SAVE before; SAVE after the change as it stands (no power cycle needed)."""
        return self.before.action != OfflineAction.SAVE and self.after.action == OfflineAction.SAVE

    @property
    def regains_save_after_power_cycle(self) -> bool:
        return (
            self.before.action != OfflineAction.SAVE
            and self.power_cycle is not None
            and self.power_cycle.action == OfflineAction.SAVE
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "mode": self.mode,
            "current_host": self.before.current_host,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "after_power_cycle": None if self.power_cycle is None else self.power_cycle.to_json(),
            "power_cycle_into": self.power_cycle_into,
            "loses_save": self.loses_save,
            "regains_save": self.regains_save,
            "regains_save_after_power_cycle": self.regains_save_after_power_cycle,
        }


@dataclass(frozen=True)
class WhatIfReport:
    """Everything `cpucompat whatif` shows; `to_json` is its documented ``--json``."""

    cluster: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    before: ClusterState
    after: ClusterState
    vms: tuple[VmWhatIf, ...]
    view: str
    pinned_baseline: str = ""  # the pin's source; empty when the cluster has none

    @property
    def lose_save(self) -> list[str]:
        return [v.vm for v in self.vms if v.loses_save]

    @property
    def regain_save(self) -> list[str]:
        return [v.vm for v in self.vms if v.regains_save]

    @property
    def regain_save_after_power_cycle(self) -> list[str]:
        return [v.vm for v in self.vms if v.regains_save_after_power_cycle]

    @property
    def cluster_worse(self) -> bool:
        """The cluster's own action leaves SAVE (for VMs nobody registered)."""
        return (
            self.before.policy.action == OfflineAction.SAVE
            and self.after.policy.action != OfflineAction.SAVE
        )

    @property
    def worse(self) -> bool:
        """Something would lose SAVE: a VM, or the cluster's action (`whatif` exits 3)."""
        return self.cluster_worse or bool(self.lose_save)

    def baseline_change(self) -> tuple[list[str], list[str]]:
        """(features the baseline gains, features it loses); empty without both baselines."""
        b, a = self.before.baseline, self.after.baseline
        if b is None or a is None:
            return [], []
        return sorted(a.features - b.features), sorted(b.features - a.features)

    def to_json(self) -> dict[str, Any]:
        gained, lost = self.baseline_change()
        return {
            "cluster": self.cluster,
            "added": list(self.added),
            "removed": list(self.removed),
            "view": self.view,
            "pinned_baseline": self.pinned_baseline or None,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "cluster_action_worse": self.cluster_worse,
            "baseline_gains": gained,
            "baseline_loses": lost,
            "vms": [v.to_json() for v in self.vms],
            "lose_save": self.lose_save,
            "regain_save": self.regain_save,
            "regain_save_after_power_cycle": self.regain_save_after_power_cycle,
            "stored": False,
        }


@dataclass(frozen=True)
class _Host:
    """One member as both rules need it: the policy's input and the VM actions' member."""

    member: Member
    source: Profile | Baseline
    status: str
    kind: str
    record: HostRecord | None  # None for an added dump or model


class WhatIfService:
    """Answers what-ifs over the coordinator's mirrors; writes nothing."""

    def __init__(
        self,
        registry: Registry,
        decisions: CompatibilityService,
        policies: PolicyEngine,
        vms: VmRegistry,
        pins: BaselinePins | None = None,
    ) -> None:
        self.registry = registry
        self.decisions = decisions
        self.policies = policies
        self.vms = vms
        self.pins = pins

    def whatif(
        self,
        cluster: str,
        add: Sequence[Ref] = (),
        remove: Sequence[str] = (),
        hypervisor: Hypervisor | None = None,
    ) -> WhatIfReport:
        check_name(cluster, "cluster name")
        if not add and not remove:
            raise InputError("nothing to change: give --add dump:PATH|model:NAME or --remove HOST")
        if len(add) + len(remove) > MAX_CHANGES:
            raise InputError(
                f"{len(add) + len(remove)} changes in one what-if; at most {MAX_CHANGES}"
            )
        rules = self.decisions.hypervisor if hypervisor is None else hypervisor
        records = self.registry.hosts(cluster)
        try:
            stored = self.policies.get(cluster).decision
        except UnknownClusterError:
            if records:
                raise
            raise UnknownClusterError(
                f"no cluster {cluster!r}: no host has joined it; see `cpucompat hosts`"
            ) from None
        removed = self._removals(cluster, remove, records)
        before = [self._registered(r, rules) for r in records]
        added = self._additions(add, rules, {r.host_id for r in records})
        after = [h for h in before if h.member.host_id not in removed] + added
        pin = self.pins.get(cluster) if self.pins is not None else None
        state_before = self._state(cluster, before, stored, rules, pin)
        state_after = self._state(cluster, after, stored, rules, pin)
        pinned = stored.pinned
        members_before = [h.member for h in before]
        members_after = [h.member for h in after]
        actions_before = _Actions(cluster, members_before, pinned)
        actions_after = _Actions(cluster, members_after, pinned)
        registered_after = {h.record.host_id: h.record for h in after if h.record is not None}
        out = []
        for vm in self.vms.all(cluster):
            was = actions_before.of(vm.name, vm.requirement, vm.current_host)
            now = actions_after.of(vm.name, vm.requirement, vm.current_host)
            requirement, into = self._power_cycle(vm, registered_after, state_after, pin, rules)
            cycled = (
                None
                if requirement is None
                else actions_after.of(vm.name, requirement, vm.current_host)
            )
            out.append(VmWhatIf(vm.name, vm.mode, was, now, cycled, into))
        return WhatIfReport(
            cluster=cluster,
            added=tuple(h.member.host_id for h in added),
            removed=tuple(remove),
            before=state_before,
            after=state_after,
            vms=tuple(out),
            view=view_label(rules),
            pinned_baseline=pin.source if pin is not None else "",
        )

    # ---- the members before and after ----------------------------------------------------

    def _removals(self, cluster: str, remove: Sequence[str], records: list[HostRecord]) -> set[str]:
        members = {r.host_id for r in records}
        out: set[str] = set()
        for host_id in remove:
            check_name(host_id, "host id")
            if host_id in out:
                raise InputError(f"--remove {host_id} is given twice")
            if host_id not in members:
                record = self.registry.find(host_id)
                if record is None:
                    raise UnknownHostError(
                        f"--remove {host_id}: no host {host_id!r} is registered; "
                        "see `cpucompat hosts`"
                    )
                raise InputError(
                    f"--remove {host_id}: the host is in cluster {record.cluster}, not {cluster}"
                )
            out.add(host_id)
        return out

    def _registered(self, record: HostRecord, rules: Hypervisor) -> _Host:
        online = record.status == HostStatus.ONLINE
        member = Member(
            host_id=record.host_id,
            online=online,
            maintenance=has_no_say(record.maintenance, online),
            view=self.decisions.host_view(record, rules),
        )
        return _Host(member, record.profile, record.status.value, "host", record)

    def _additions(self, add: Sequence[Ref], rules: Hypervisor, taken: set[str]) -> list[_Host]:
        out: list[_Host] = []
        seen = set(taken)
        for ref in add:
            if ref.kind not in ("dump", "model"):
                raise InputError(
                    f"--add {ref.label}: give a dump:PATH or model:NAME (a registered host is "
                    "in a cluster already)"
                )
            if ref.label in seen:
                raise InputError(
                    f"--add {ref.label}: "
                    + ("given twice" if ref.label not in taken else "a host of that name exists")
                    + "; give every added host its own name"
                )
            seen.add(ref.label)
            source = domain_side(ref)  # a bad dump or model name: InputError
            view = target_of(source, ref.label, hypervisor=rules)
            member = Member(host_id=ref.label, online=True, maintenance=False, view=view)
            out.append(_Host(member, source, "online", ref.kind, None))
        return out

    # ---- the cluster's action and baseline ----------------------------------------------

    def _state(
        self,
        cluster: str,
        hosts: list[_Host],
        stored: PolicyDecision,
        rules: Hypervisor,
        pin: Pin | None,
    ) -> ClusterState:
        say = [h for h in hosts if not h.member.maintenance]
        policy = decide(
            cluster,
            [PolicyInput(h.member.host_id, h.source, h.status, h.kind) for h in say],
            stored.pinned,
            stored.pin_reason,
            rules,
        )
        baseline, note = _baseline(cluster, say, rules)
        below: tuple[str, ...] = ()
        if pin is not None:
            below = tuple(
                sorted(
                    h.member.host_id
                    for h in hosts
                    if measure_host(pin, h.member.host_id, h.source).below
                )
            )
        return ClusterState(
            policy=policy,
            hosts=tuple(sorted(h.member.host_id for h in say)),
            baseline=baseline,
            baseline_note=note,
            below_pinned_baseline=below,
        )

    # ---- a power cycle after the change ---------------------------------------------------

    def _power_cycle(
        self,
        vm: VmRecord,
        registered_after: dict[str, HostRecord],
        state: ClusterState,
        pin: Pin | None,
        rules: Hypervisor,
    ) -> tuple[Requirement | None, str]:
        old = vm.requirement
        if vm.mode == "host":
            host_id = vm.current_host or vm.boot_host
            record = registered_after.get(host_id or "")
            if record is not None:
                profile = record.profile
                requirement = self.decisions.host_requirement(record, rules).with_guest(
                    invtsc=old.invariant_tsc and profile.invariant_tsc,
                    sgx_epc=old.sgx_epc and "sgx" in profile.features,
                )
                return requirement, f"host {host_id}"
        elif vm.mode == "baseline" and vm.baseline == PINNED and pin is not None:
            return (
                pin.requirement.with_guest(invtsc=old.invariant_tsc, sgx_epc=old.sgx_epc),
                "the pinned baseline",
            )
        if state.baseline is None:
            return None, f"no common baseline ({state.baseline_note})"
        requirement = pinned_requirement(state.baseline).with_guest(
            invtsc=old.invariant_tsc, sgx_epc=old.sgx_epc
        )
        return requirement, "the new cluster baseline"


class _Actions:
    """`vm_action` for one side's members, once per distinct (requirement, current host).

    VMs booted alike on one host have equal requirements, and an action names no VM in
    its reason, so their actions differ only by name: a what-if of a cluster with many
    VMs per host costs one `vm_action` per host and boot, not per VM."""

    def __init__(self, cluster: str, members: list[Member], pinned: OfflineAction | None) -> None:
        self.cluster = cluster
        self.members = members
        self.pinned = pinned
        self._seen: dict[tuple[Requirement, str | None], VmAction] = {}

    def of(self, vm: str, requirement: Requirement, current_host: str | None) -> VmAction:
        key = (requirement, current_host)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = vm_action(
                vm, self.cluster, requirement, current_host, self.members, self.pinned
            )
        return found if found.vm == vm else replace(found, vm=vm)


def _baseline(
    cluster: str, hosts: list[_Host], rules: Hypervisor
) -> tuple[ClusterBaseline | None, str]:
    """The common baseline of the members with a say (`audit`, one decision path); its
    members sorted, like every list of hosts in a what-if (its pages go in label order)."""
    if not hosts:
        return None, "no host outside maintenance"
    ordered = sorted(hosts, key=lambda h: h.member.host_id)
    report = audit(
        [HostInput(h.member.host_id, h.source, kind=h.kind) for h in ordered],
        cluster=cluster,
        hypervisor=rules,
    )
    try:
        return ClusterBaseline.from_audit(report), ""
    except ClusterBaselineError:
        vendors = sorted(v.strip() for v in report.vendors)
        return None, f"the hosts mix vendors: {', '.join(vendors)}"
