"""The one place where the coordinator's domain types meet the wire (cpucompat.v1).

Servicers call these functions and nothing else touches protobuf, so the
decision and storage code stays plain Python that tests can read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from cpucompat.agent.errors import InputError
from cpucompat.agent.wire import capture_from_proto, profile_to_proto, summary_to_proto
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import profile_pb2 as pb_profile

from .compatibility import Ref
from .domain.audit import AuditReport, CommonBaseline, HostRow, ProfileRow, Removal
from .domain.baselines import nearest_level
from .domain.cluster_baseline import ClusterBaseline
from .domain.compat import Reason, Verdict
from .domain.hosts import Event, EventKind, HostRecord, HostStatus, ProfileVersion
from .domain.kvm_offerable import GENERIC_VIEW, Hypervisor
from .domain.policy import OfflineAction, PolicyDecision
from .domain.requirement import Requirement
from .domain.vm_action import VmAction
from .policy import StoredPolicy
from .vms import FailoverPlan, VmRecord
from .whatif import ClusterState, VmWhatIf, WhatIfReport

__all__ = ["capture_from_proto", "profile_to_proto"]  # re-exported for the servicers

_STATUS = {
    HostStatus.ONLINE: pb.HOST_STATUS_ONLINE,
    HostStatus.STALE: pb.HOST_STATUS_STALE,
    HostStatus.OFFLINE: pb.HOST_STATUS_OFFLINE,
}
_STATUS_BY_NAME = {s.value: v for s, v in _STATUS.items()}
_EVENT = {
    EventKind.HOST_JOINED: pb.EVENT_KIND_HOST_JOINED,
    EventKind.HOST_LEFT: pb.EVENT_KIND_HOST_LEFT,
    EventKind.HOST_REMOVED: pb.EVENT_KIND_HOST_REMOVED,
    EventKind.STATUS_CHANGED: pb.EVENT_KIND_STATUS_CHANGED,
    EventKind.PROFILE_CHANGED: pb.EVENT_KIND_PROFILE_CHANGED,
    EventKind.CLUSTER_CHANGED: pb.EVENT_KIND_CLUSTER_CHANGED,
    EventKind.POLICY_CHANGED: pb.EVENT_KIND_POLICY_CHANGED,
    EventKind.VM_REGISTERED: pb.EVENT_KIND_VM_REGISTERED,
    EventKind.VM_REMOVED: pb.EVENT_KIND_VM_REMOVED,
    EventKind.BASELINE_PINNED: pb.EVENT_KIND_BASELINE_PINNED,
    EventKind.BASELINE_UNPINNED: pb.EVENT_KIND_BASELINE_UNPINNED,
    EventKind.HOST_BELOW_BASELINE: pb.EVENT_KIND_HOST_BELOW_BASELINE,
    EventKind.VM_ACTION_CHANGED: pb.EVENT_KIND_VM_ACTION_CHANGED,
    EventKind.MAINTENANCE_CHANGED: pb.EVENT_KIND_MAINTENANCE_CHANGED,
}


def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def timestamp_seconds(ts: Timestamp) -> float:
    return ts.ToNanoseconds() / 1e9


def duration(seconds: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def duration_seconds(d: Duration) -> float:
    return d.ToNanoseconds() / 1e9


def status_to_proto(status: HostStatus) -> int:
    return _STATUS[status]


def host_to_proto(record: HostRecord, microarchitecture: str = "") -> pb.Host:
    return pb.Host(
        host_id=record.host_id,
        cluster=record.cluster,
        agent_address=record.agent_address,
        status=_STATUS[record.status],
        last_seen=timestamp(record.last_seen),
        first_seen=timestamp(record.first_seen),
        replayed=record.replayed,
        fingerprint=record.fingerprint,
        summary=summary_to_proto(record.profile, microarchitecture),
        agent_version=record.agent_version,
        profile_version=record.profile_version,
        maintenance=record.in_maintenance,
        maintenance_ending=record.maintenance == "ending",
        maintenance_reason=record.maintenance_reason,
    )


def version_to_proto(number: int, version: ProfileVersion) -> pb.ProfileVersion:
    offer = version.summary.get("hypervisor_offer") or {}
    return pb.ProfileVersion(
        version=number,
        recorded_at=timestamp(version.recorded_at),
        fingerprint=version.fingerprint,
        features_gained=list(version.gained),
        features_lost=list(version.lost),
        microcode=str(version.summary.get("microcode") or ""),
        replayed=version.source.startswith("replay:"),
        offer_fingerprint=str(offer.get("fingerprint") or ""),
        offer_features_gained=[str(f) for f in offer.get("features_gained", [])],
        offer_features_lost=[str(f) for f in offer.get("features_lost", [])],
    )


def event_to_proto(event: Event) -> pb.Event:
    details = dict(event.details)
    msg = pb.Event(
        id=event.id,
        time=timestamp(event.time),
        cluster=event.cluster,
        host_id=event.host_id,
        kind=_EVENT.get(event.kind, pb.EVENT_KIND_UNSPECIFIED),
        message=event.message,
        features_gained=list(details.pop("features_gained", [])),
        features_lost=list(details.pop("features_lost", [])),
        old_status=_STATUS_BY_NAME.get(str(details.pop("old_status", "")), 0),
        new_status=_STATUS_BY_NAME.get(str(details.pop("new_status", "")), 0),
        vm_name=str(details.pop("vm", "")),
        old_action=_action_by_name(details.get("old_action")),
        new_action=_action_by_name(details.get("new_action")),
    )
    for key, value in details.items():
        msg.details[key] = value if isinstance(value, str) else _compact(value)
    return msg


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# ---- decisions ------------------------------------------------------------------------

_HYPERVISOR = {Hypervisor.GENERIC: pb.HYPERVISOR_GENERIC, Hypervisor.KVM: pb.HYPERVISOR_KVM}
_HYPERVISOR_BACK = {v: k for k, v in _HYPERVISOR.items()} | {
    pb.HYPERVISOR_UNSPECIFIED: Hypervisor.GENERIC
}


def hypervisor_to_proto(hypervisor: Hypervisor) -> int:
    return _HYPERVISOR[hypervisor]


def hypervisor_from_proto(value: int) -> Hypervisor:
    """The rules a request asks for; unset is generic, an unknown number is refused."""
    hypervisor = _HYPERVISOR_BACK.get(value)
    if hypervisor is None:
        raise InputError(f"unknown hypervisor {value}: use HYPERVISOR_GENERIC or HYPERVISOR_KVM")
    return hypervisor


def ref_from_proto(msg: pb.HostRef) -> Ref:
    which = msg.WhichOneof("ref")
    if which == "host_id":
        return Ref.host(msg.host_id)
    if which == "dump":
        name = msg.dump.name or "dump"
        # The capture travels in every request (the coordinator reads no dump file): the
        # digest of its bytes as sent names its content in a cached audit's key.
        content = hashlib.sha256(msg.dump.raw.SerializeToString(deterministic=True)).hexdigest()
        return Ref.dump(name.removeprefix("dump:"), capture_from_proto(msg.dump.raw), content)
    if which == "model":
        return Ref.model(msg.model, msg.vendor or None)
    raise InputError("a host reference needs one of host_id, dump or model")


def reason_to_proto(reason: Reason) -> pb.Reason:
    return pb.Reason(
        code=reason.code,
        detail=reason.detail,
        features=list(reason.features),
        data={k: v if isinstance(v, str) else _compact(v) for k, v in dict(reason.data).items()},
    )


def verdict_to_proto(verdict: Verdict) -> pb.Verdict:
    return pb.Verdict(
        compatible=verdict.compatible,
        reasons=[reason_to_proto(r) for r in verdict.reasons],
        warnings=[reason_to_proto(w) for w in verdict.warnings],
        summary=verdict.summary,
        view=verdict.view,
    )


def verdicts_to_proto(verdicts: list[Verdict]) -> list[pb.Verdict]:
    """One message per verdict, each distinct verdict object converted once in this call
    (the engine shares verdicts between hosts of one profile); nothing is kept after."""
    converted: dict[int, pb.Verdict] = {}
    out = []
    for verdict in verdicts:
        msg = converted.get(id(verdict))
        if msg is None:
            msg = converted[id(verdict)] = verdict_to_proto(verdict)
        out.append(msg)
    return out


def _pair_to_proto(pair: dict[str, Any]) -> pb.PairVerdict:
    return pb.PairVerdict(
        # Profile-level pairs (large audits) name an example host of each side.
        source=str(pair.get("source_example") or pair["source"]),
        target=str(pair.get("target_example") or pair["target"]),
        compatible=bool(pair["compatible"]),
        source_hosts=int(pair.get("source_hosts", 0)),
        target_hosts=int(pair.get("target_hosts", 0)),
        reasons=[
            pb.Reason(
                code=r["code"], detail=r.get("detail", ""), features=list(r.get("features", []))
            )
            for r in pair.get("reasons", [])
        ],
    )


_ACTION = {"SAVE": pb.OFFLINE_ACTION_SAVE, "SHUTDOWN": pb.OFFLINE_ACTION_SHUTDOWN}
_ACTION_BACK = {v: k for k, v in _ACTION.items()}
_HOST_KIND = {
    "host": pb.AUDIT_HOST_KIND_REGISTERED,
    "dump": pb.AUDIT_HOST_KIND_DUMP,
    "model": pb.AUDIT_HOST_KIND_MODEL,
}
_HOST_KIND_BACK = {v: k for k, v in _HOST_KIND.items()}


def audit_to_proto(report: AuditReport, now: float) -> pb.AuditReport:
    """The whole report: `audit_from_proto` rebuilds what its `to_json` shows."""
    msg = audit_summary_to_proto(report, now)
    everyone = range(len(report.hosts))
    add_audit_hosts(msg, report, everyone)
    msg.groups.extend(audit_groups_to_proto(report, everyone))
    return msg


def audit_summary_to_proto(
    report: AuditReport, now: float, host_pairs: bool = True
) -> pb.AuditReport:
    """The report without its hosts (`hosts`, `losses`, `groups`) and, unless
    ``host_pairs``, without the host pairs (`pairs`, `blocking_pairs` of an audit of up to
    `pair_limit` hosts): the part the first page of a paged audit holds whole."""
    blocking = report.pairs(blocking_only=True)
    msg = pb.AuditReport(
        cluster=report.cluster or "",
        offline_action=_ACTION[report.offline_action],
        reason=report.summary,
        compatible=not blocking,
        vendors=list(report.vendors),
        distinct_profiles=len(report.profiles),
        generated_at=timestamp(now),
        reasons=[reason_to_proto(r) for r in report.reasons],
        warnings=[reason_to_proto(w) for w in report.warnings],
        pair_limit=report.pair_limit,
        view=report.view,
        profiles=audit_profiles_to_proto(report),
    )
    for i, row in enumerate(report.matrix):
        for j, v in enumerate(row):
            if i != j and not v.compatible:
                msg.refusals.add(
                    source=i, target=j, reasons=[reason_to_proto(r) for r in v.reasons]
                )
    if host_pairs or report.pairs_mode != "hosts":
        msg.pairs.extend(_pair_to_proto(p) for p in report.pairs())
        msg.blocking_pairs.extend(_pair_to_proto(p) for p in blocking)
    base = report.baseline
    msg.baseline.CopyFrom(
        pb.Baseline(
            vendor=base.vendor or "",
            features=sorted(base.features),
            x86_64_level=base.x86_64_level or "",
            microarchitecture=base.microarchitecture or "",
            xsave_mask=base.xsave_mask,
            physical_bits=base.physical_bits or 0,
        )
    )
    removal = report.best_removal
    if removal.host:
        msg.best_removal.CopyFrom(
            pb.BestRemoval(
                host=removal.host,
                gained_features=list(removal.gained),
                makes_compatible=removal.offline_action_after == "SAVE",
            )
        )
    return msg


def audit_profiles_to_proto(report: AuditReport) -> list[pb.AuditProfile]:
    """The distinct profiles, which `AuditHost.profile` indexes."""
    return [
        pb.AuditProfile(
            fingerprint=p.fingerprint,
            vendor=p.vendor,
            brand=p.brand,
            family=p.family,
            model=p.model,
            x86_64_level=p.level or "",
            group=p.group,
            loses=list(p.loses),
        )
        for p in report.profiles
    ]


def audit_host_to_proto(report: AuditReport, index: int) -> tuple[pb.AuditHost, pb.HostLoss]:
    """One audited host and what it loses under the baseline (`hosts` and `losses`)."""
    h = report.hosts[index]
    p = report.profiles[h.profile]
    host = pb.AuditHost(
        name=h.name,
        kind=_HOST_KIND[h.kind],
        fingerprint=p.fingerprint,
        replayed=h.replayed,
        status=pb.HOST_STATUS_STALE if h.stale else pb.HOST_STATUS_UNSPECIFIED,
        summary=pb_profile.ProfileSummary(
            vendor=p.vendor, brand=h.brand, x86_64_level=p.level or ""
        ),
        profile=h.profile,
    )
    return host, pb.HostLoss(host=h.name, features=list(p.loses))


def audit_host_pairs_to_proto(
    report: AuditReport, index: int, reasons: dict[int, list[dict[str, Any]]]
) -> list[pb.PairVerdict]:
    """The entries of `pairs` whose source is the host at ``index`` (host pairs mode), in
    the order of the whole list; ``reasons`` keeps each verdict's rendered reasons."""
    hosts = report.hosts
    row = report.matrix[hosts[index].profile]
    out = []
    for b, target in enumerate(hosts):
        if b == index:
            continue
        verdict = row[target.profile]
        rendered = reasons.get(id(verdict))
        if rendered is None:
            rendered = reasons[id(verdict)] = [r.to_json() for r in verdict.reasons]
        out.append(
            _pair_to_proto(
                {
                    "source": hosts[index].name,
                    "target": target.name,
                    "compatible": verdict.compatible,
                    "reasons": rendered,
                }
            )
        )
    return out


def add_audit_hosts(msg: pb.AuditReport, report: AuditReport, indices: Iterable[int]) -> None:
    """Append the hosts at ``indices`` to `hosts` and `losses`."""
    for index in indices:
        host, loss = audit_host_to_proto(report, index)
        msg.hosts.append(host)
        msg.losses.append(loss)


def audit_groups_to_proto(report: AuditReport, indices: Iterable[int]) -> list[pb.HostGroup]:
    """Every group of the report, each with the labels of its hosts among ``indices``."""
    group_of = {p: g for g, members in enumerate(report.groups) for p in members}
    names: list[list[str]] = [[] for _ in report.groups]
    for index in indices:
        h = report.hosts[index]
        names[group_of[h.profile]].append(h.name)
    return [pb.HostGroup(hosts=sorted(n)) for n in names]


def _data_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def reason_from_proto(msg: pb.Reason) -> Reason:
    """A Reason back from the wire (data values that were JSON come back as values)."""
    return Reason(
        code=msg.code,
        detail=msg.detail,
        features=tuple(msg.features),
        data={k: _data_value(v) for k, v in sorted(msg.data.items())},
    )


def _refused(reasons: tuple[Reason, ...]) -> Verdict:
    return Verdict(False, reasons, (), "refused: " + "; ".join(r.code for r in reasons))


def audit_from_proto(msg: pb.AuditReport) -> AuditReport:
    """The domain report a coordinator sent, so the CLI prints one `to_json` in both modes."""
    hosts = tuple(
        HostRow(
            name=h.name,
            kind=_HOST_KIND_BACK.get(h.kind, "host"),
            profile=h.profile,
            stale=h.status == pb.HOST_STATUS_STALE,
            replayed=h.replayed,
            brand=h.summary.brand,
        )
        for h in msg.hosts
    )
    members: list[list[int]] = [[] for _ in msg.profiles]
    for index, h in enumerate(hosts):
        members[h.profile].append(index)
    profiles = tuple(
        ProfileRow(
            index=i,
            fingerprint=p.fingerprint,
            vendor=p.vendor,
            brand=p.brand,
            family=p.family if p.HasField("family") else None,
            model=p.model if p.HasField("model") else None,
            level=p.x86_64_level or None,
            hosts=tuple(members[i]),
            group=p.group,
            loses=tuple(p.loses),
        )
        for i, p in enumerate(msg.profiles)
    )
    accepted = Verdict(True, (), (), "compatible")
    matrix = [[accepted] * len(profiles) for _ in profiles]
    for refusal in msg.refusals:
        matrix[refusal.source][refusal.target] = _refused(
            tuple(reason_from_proto(r) for r in refusal.reasons)
        )
    group_count = max((p.group for p in profiles), default=-1) + 1
    groups = tuple(tuple(p.index for p in profiles if p.group == g) for g in range(group_count))
    base = msg.baseline
    removal = msg.best_removal if msg.HasField("best_removal") else None
    return AuditReport(
        offline_action=_ACTION_BACK.get(msg.offline_action, "SHUTDOWN"),
        summary=msg.reason,
        reasons=tuple(reason_from_proto(r) for r in msg.reasons),
        warnings=tuple(reason_from_proto(w) for w in msg.warnings),
        hosts=hosts,
        profiles=profiles,
        matrix=tuple(tuple(row) for row in matrix),
        groups=groups,
        baseline=CommonBaseline(
            vendor=base.vendor or None,
            features=frozenset(base.features),
            xsave_mask=base.xsave_mask,
            physical_bits=base.physical_bits or None,
            x86_64_level=base.x86_64_level or None,
            microarchitecture=base.microarchitecture or None,
        ),
        best_removal=Removal(
            removal.host,
            tuple(removal.gained_features),
            "SAVE" if removal.makes_compatible else "SHUTDOWN",
        )
        if removal is not None
        else Removal(None, (), None),
        pair_limit=msg.pair_limit,
        cluster=msg.cluster or None,
        view=msg.view or GENERIC_VIEW,
    )


# ---- policy and VMs -------------------------------------------------------------------

_OFFLINE = {
    OfflineAction.TURN_OFF: pb.OFFLINE_ACTION_TURN_OFF,
    OfflineAction.SAVE: pb.OFFLINE_ACTION_SAVE,
    OfflineAction.SHUTDOWN: pb.OFFLINE_ACTION_SHUTDOWN,
    OfflineAction.SHUTDOWN_FORCED: pb.OFFLINE_ACTION_SHUTDOWN_FORCED,
}
_OFFLINE_BACK = {v: k for k, v in _OFFLINE.items()}


def _action_by_name(name: object) -> int:
    """An action name from an event's details ("SAVE"), as the wire enum; 0 when absent."""
    if not isinstance(name, str) or name not in OfflineAction.__members__:
        return pb.OFFLINE_ACTION_UNSPECIFIED
    return _OFFLINE[OfflineAction[name]]


def action_to_proto(action: OfflineAction | None) -> int:
    return pb.OFFLINE_ACTION_UNSPECIFIED if action is None else _OFFLINE[action]


def action_from_proto(value: int) -> OfflineAction:
    if value not in _OFFLINE_BACK:
        raise InputError(
            "an offline action is required: TURN_OFF, SAVE, SHUTDOWN or SHUTDOWN_FORCED"
        )
    return _OFFLINE_BACK[value]


def policy_to_proto(stored: StoredPolicy) -> pb.ClusterPolicy:
    d = stored.decision
    return pb.ClusterPolicy(
        cluster=d.cluster,
        action=_OFFLINE[d.action],
        computed_action=_OFFLINE[d.computed],
        pinned_action=action_to_proto(d.pinned),
        hyperv_offline_action=int(d.action),
        reason=d.reason,
        blocking_pairs=[_pair_to_proto(p) for p in d.blocking_pairs],
        stale_hosts=list(d.stale_hosts),
        stale_hosts_total=d.stale_total,
        updated_at=timestamp(stored.updated_at),
        version=stored.version,
        host_count=d.host_count,
        pin_reason=d.pin_reason,
        blocking_pairs_total=d.blocking_total,
    )


def requirement_to_proto(req: Requirement) -> pb.VmRequirement:
    return pb.VmRequirement(
        mode=pb.VM_REQUIREMENT_MODE_HOST
        if req.mode.value == "host"
        else pb.VM_REQUIREMENT_MODE_BASELINE,
        source=req.baseline or req.name,
        vendor=req.vendor or "",
        features=sorted(req.features),
        xsave_mask=req.xsave_mask,
        physical_bits=req.physical_bits or 0,
        x86_64_level=nearest_level(req.features) or "",
        family=req.family or 0,
        model=req.model or 0,
        tsc_hz=req.tsc_hz or 0,
        fingerprint=req.fingerprint or "",
        invariant_tsc=req.invariant_tsc,
        sgx_epc=req.sgx_epc,
        guest_physical_bits=req.guest_physical_bits or 0,
        avx10_version=req.avx10_version or 0,
        tsc_fixed=req.tsc_fixed,
    )


def vm_to_proto(vm: VmRecord, action: VmAction | None = None) -> pb.Vm:
    msg = pb.Vm(
        name=vm.name,
        cluster=vm.cluster,
        boot_host=vm.boot_host or "",
        baseline=vm.baseline or "",
        requirement=requirement_to_proto(vm.requirement),
        registered_at=timestamp(vm.registered_at),
        booted_at=timestamp(vm.booted_at),
        cpu_definition=vm.cpu_definition or "",
    )
    if action is not None:
        msg.action.CopyFrom(vm_action_to_proto(action))
    return msg


def vm_action_to_proto(action: VmAction) -> pb.VmAction:
    return pb.VmAction(
        vm_name=action.vm,
        action=_OFFLINE[action.action],
        hyperv_offline_action=int(action.action),
        refusing_hosts=list(action.refusing_hosts),
        reason=action.reason,
        current_host=action.current_host or "",
        refusing_hosts_total=action.refusing_total,
    )


def plan_to_proto(plan: FailoverPlan) -> pb.FailoverPlan:
    return pb.FailoverPlan(
        vm_name=plan.vm,
        to_host=plan.to_host,
        action=_OFFLINE[plan.action],
        hyperv_offline_action=int(plan.action),
        verdict=verdict_to_proto(plan.verdict),
        reason=plan.reason,
        cluster_action=action_to_proto(plan.cluster_action),
    )


# ---- what-if (`cpucompat whatif`) -----------------------------------------------------------


def decision_to_proto(d: PolicyDecision) -> pb.ClusterPolicy:
    """A computed, never stored decision: no version, no update time."""
    return pb.ClusterPolicy(
        cluster=d.cluster,
        action=_OFFLINE[d.action],
        computed_action=_OFFLINE[d.computed],
        pinned_action=action_to_proto(d.pinned),
        hyperv_offline_action=int(d.action),
        reason=d.reason,
        blocking_pairs=[_pair_to_proto(p) for p in d.blocking_pairs],
        stale_hosts=list(d.stale_hosts),
        stale_hosts_total=d.stale_total,
        host_count=d.host_count,
        pin_reason=d.pin_reason,
        blocking_pairs_total=d.blocking_total,
    )


def decision_from_proto(msg: pb.ClusterPolicy) -> PolicyDecision:
    return PolicyDecision(
        cluster=msg.cluster,
        action=action_from_proto(msg.action),
        computed=action_from_proto(msg.computed_action),
        pinned=None
        if msg.pinned_action == pb.OFFLINE_ACTION_UNSPECIFIED
        else action_from_proto(msg.pinned_action),
        reason=msg.reason,
        blocking_pairs=tuple(
            {
                "source": p.source,
                "target": p.target,
                **(
                    {"source_hosts": p.source_hosts, "target_hosts": p.target_hosts}
                    if p.source_hosts
                    else {}
                ),
                "compatible": p.compatible,
                "reasons": [
                    {"code": r.code, "detail": r.detail, "features": list(r.features)}
                    for r in p.reasons
                ],
            }
            for p in msg.blocking_pairs
        ),
        stale_hosts=tuple(msg.stale_hosts),
        # An older coordinator sends no total: it named every stale host.
        stale_total=max(msg.stale_hosts_total, len(msg.stale_hosts)),
        host_count=msg.host_count,
        pin_reason=msg.pin_reason,
        blocking_total=msg.blocking_pairs_total,
    )


def vm_action_from_proto(msg: pb.VmAction, cluster: str) -> VmAction:
    return VmAction(
        vm=msg.vm_name,
        cluster=cluster,
        action=action_from_proto(msg.action),
        refusing_hosts=tuple(msg.refusing_hosts),
        reason=msg.reason,
        current_host=msg.current_host or None,
        # A coordinator from before the bound sent every host and no total.
        refusing_total=max(msg.refusing_hosts_total, len(msg.refusing_hosts)),
    )


def _state_to_proto(state: ClusterState) -> pb.WhatIfClusterState:
    base = state.baseline
    return pb.WhatIfClusterState(
        policy=decision_to_proto(state.policy),
        hosts=list(state.hosts),
        baseline=None
        if base is None
        else pb.WhatIfBaseline(
            vendor=base.vendor or "",
            features=sorted(base.features),
            xsave_mask=base.xsave_mask,
            physical_bits=base.physical_bits or 0,
            members=list(base.members),
        ),
        baseline_note=state.baseline_note,
        below_pinned_baseline=list(state.below_pinned_baseline),
    )


def _state_from_proto(msg: pb.WhatIfClusterState, cluster: str, view: str) -> ClusterState:
    base = None
    if msg.HasField("baseline"):
        b = msg.baseline
        base = ClusterBaseline(
            members=tuple(b.members),
            vendor=b.vendor or None,
            features=frozenset(b.features),
            xsave_mask=b.xsave_mask,
            physical_bits=b.physical_bits or None,
            view=view,
            cluster=cluster,
        )
    return ClusterState(
        policy=decision_from_proto(msg.policy),
        hosts=tuple(msg.hosts),
        baseline=base,
        baseline_note=msg.baseline_note,
        below_pinned_baseline=tuple(msg.below_pinned_baseline),
    )


def whatif_to_proto(report: WhatIfReport) -> pb.WhatIfResponse:
    return pb.WhatIfResponse(
        cluster=report.cluster,
        added=list(report.added),
        removed=list(report.removed),
        before=_state_to_proto(report.before),
        after=_state_to_proto(report.after),
        vms=[
            pb.VmWhatIf(
                vm_name=v.vm,
                mode=v.mode,
                before=vm_action_to_proto(v.before),
                after=vm_action_to_proto(v.after),
                after_power_cycle=None
                if v.power_cycle is None
                else vm_action_to_proto(v.power_cycle),
                power_cycle_into=v.power_cycle_into,
            )
            for v in report.vms
        ],
        lose_save=report.lose_save,
        regain_save_after_power_cycle=report.regain_save_after_power_cycle,
        view=report.view,
        pinned_baseline=report.pinned_baseline,
    )


def whatif_from_proto(msg: pb.WhatIfResponse) -> WhatIfReport:
    """The domain report back from the wire, so the CLI prints the one `to_json`."""
    cluster = msg.cluster
    return WhatIfReport(
        cluster=cluster,
        added=tuple(msg.added),
        removed=tuple(msg.removed),
        before=_state_from_proto(msg.before, cluster, msg.view),
        after=_state_from_proto(msg.after, cluster, msg.view),
        vms=tuple(
            VmWhatIf(
                vm=v.vm_name,
                mode=v.mode,
                before=vm_action_from_proto(v.before, cluster),
                after=vm_action_from_proto(v.after, cluster),
                power_cycle=vm_action_from_proto(v.after_power_cycle, cluster)
                if v.HasField("after_power_cycle")
                else None,
                power_cycle_into=v.power_cycle_into,
            )
            for v in msg.vms
        ),
        view=msg.view,
        pinned_baseline=msg.pinned_baseline,
    )
