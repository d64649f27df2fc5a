"""A registered VM's own offline action: SAVE only where every other host can restore it.

Hyper-V sets OfflineAction per VM resource, so one older host need not turn every
VM's planned fail-over into a shutdown: a VM is SAVE when each other member of its
cluster that is not in maintenance is online and accepts the requirement the VM
booted with (`compat.check`, the one decision path); otherwise SHUTDOWN, naming the
hosts that refuse it. A stale, offline or unknown host refuses (fail-safe). An
administrator's colder cluster pin wins, as it does for the cluster's action.

The action is decided from every member; only the naming is bounded: an action names
the first REFUSING_HOSTS_LISTED refusing hosts by host id and counts them all, because
it rides in every `Vm` message, every agent's policy and every stored VM row (one VM
refused by most of 10,000 hosts was 195 KB in each).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .compat import Reason, TargetView, Verdict, checker
from .policy import OfflineAction
from .requirement import Requirement

MAX_NAMED_REASONS = 3
REFUSING_HOSTS_LISTED = 20
"""Refusing hosts an action names (sorted by host id); `refusing_total` counts them all."""
IN_MAINTENANCE = "IN_MAINTENANCE"


def in_maintenance(verdict: Verdict, host_id: str, why: str = "") -> Verdict:
    """A host in maintenance is no fail-over target, whatever its processor accepts."""
    reason = Reason(
        IN_MAINTENANCE,
        f"host {host_id} is in maintenance"
        + (f" ({why})" if why else "")
        + f"; end it with `cpucompat host maintenance {host_id} off`",
        data={"host": host_id},
    )
    return Verdict(
        False,
        (reason, *verdict.reasons),
        verdict.warnings,
        f"refused: {reason.detail}",
        verdict.view,
    )


def has_no_say(maintenance: str, online: bool) -> bool:
    """Whether a host's processor and silence are left out of every action.

    In maintenance ("on"): left out. Maintenance ending (off asked, its next fresh
    report ends it): still left out while it is online, but once it has gone stale (its
    agent never came back) it counts again, as a host that refuses: otherwise a host
    that died during maintenance would keep its cluster at SAVE for ever.
    """
    return maintenance == "on" or (maintenance == "ending" and online)


@dataclass(frozen=True)
class Member:
    """One host of the VM's cluster as the VM's action sees it."""

    host_id: str
    online: bool
    maintenance: bool
    view: TargetView | None  # None: no stored profile, so it accepts nothing (fail-safe)


@dataclass(frozen=True)
class VmAction:
    """A VM's effective offline action, the first refusing hosts and their count, and why.

    ``refusing_hosts`` holds at most REFUSING_HOSTS_LISTED hosts, the first by host id;
    ``refusing_total`` counts every refusing host. The action was decided from all of
    them: nothing may decide from the listed few."""

    vm: str
    cluster: str
    action: OfflineAction
    refusing_hosts: tuple[str, ...]
    reason: str
    current_host: str | None = None
    refusing_total: int = 0

    def __post_init__(self) -> None:
        if self.refusing_total < len(self.refusing_hosts):
            raise ValueError(
                f"VM {self.vm}: refusing_total {self.refusing_total} is below the "
                f"{len(self.refusing_hosts)} hosts listed"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "cluster": self.cluster,
            "offline_action": self.action.name,
            "hyperv_offline_action": int(self.action),
            "refusing_hosts": list(self.refusing_hosts),
            "refusing_hosts_total": self.refusing_total,
            "reason": self.reason,
        }


def listed(names: Sequence[str], total: int, sep: str = ", ") -> str:
    """The listed names and "… and N more" for the ``total - len(names)`` not listed."""
    rest = total - len(names)
    head = sep.join(names)
    if rest <= 0:
        return head
    return f"{head}{sep}\u2026 and {rest} more" if head else f"\u2026 and {rest} more"


def vm_action(
    vm: str,
    cluster: str,
    requirement: Requirement,
    current_host: str | None,
    members: Sequence[Member],
    pinned: OfflineAction | None = None,
) -> VmAction:
    """SAVE when every counted other host accepts ``requirement``; SHUTDOWN naming the rest."""
    return _combine(vm, cluster, current_host, members, refusals(requirement, members), pinned)


@dataclass(frozen=True)
class ClusterVm:
    """One registered VM of a cluster as its action needs it."""

    name: str
    requirement: Requirement
    current_host: str | None


def vm_actions(
    cluster: str,
    vms: Sequence[ClusterVm],
    members: Sequence[Member],
    pinned: OfflineAction | None = None,
) -> list[VmAction]:
    """`vm_action` of every VM of ``cluster``, checking each distinct requirement once per member.

    VMs booted on hosts with one processor share a requirement's decision key (everything
    a verdict depends on, `Requirement.decision_key`), so a cluster of 50 hosts and 50 VMs
    costs a few dozen checks, not 2,450; the answers are `vm_action`'s, VM by VM.
    """
    per_key: dict[tuple[Any, ...], list[str | None]] = {}  # lives for this call only
    out = []
    for vm in vms:
        key = vm.requirement.decision_key
        why = per_key.get(key)
        if why is None:
            why = per_key[key] = refusals(vm.requirement, members)
        out.append(_combine(vm.name, cluster, vm.current_host, members, why, pinned))
    return out


def refusals(requirement: Requirement, members: Sequence[Member]) -> list[str | None]:
    """Per member, why it refuses ``requirement`` (None: it accepts, or has no say)."""
    out: list[str | None] = []
    against = checker(requirement)
    for m in members:
        if m.maintenance:
            out.append(None)
        elif not m.online:
            out.append("not online (unknown means shutdown)")
        elif m.view is None:
            out.append("no stored profile (unknown means shutdown)")
        else:
            verdict = against(m.view)
            out.append(None if verdict.compatible else verdict.summary)
    return out


def _combine(
    vm: str,
    cluster: str,
    current_host: str | None,
    members: Sequence[Member],
    why_refused: Sequence[str | None],
    pinned: OfflineAction | None,
) -> VmAction:
    refused: list[tuple[str, str]] = []  # (host, why): every refusing member
    counted = 0
    for m, refusal in zip(members, why_refused, strict=True):
        if m.host_id == current_host or m.maintenance:
            continue
        counted += 1
        if refusal is not None:
            refused.append((m.host_id, refusal))
    refused.sort(key=lambda r: r[0])  # by host id (what-if members add labels at the end)
    refusing = [host for host, _ in refused[:REFUSING_HOSTS_LISTED]]
    if refused:  # decided from every refusing member; only the naming below is bounded
        shown = "; ".join(f"{host}: {why}" for host, why in refused[:MAX_NAMED_REASONS]) + (
            f"; \u2026 and {len(refused) - MAX_NAMED_REASONS} more"
            if len(refused) > MAX_NAMED_REASONS
            else ""
        )
        named = listed(refusing, len(refused))
        action, reason = OfflineAction.SHUTDOWN, f"refused by {named}: {shown}"
    elif counted == 0:
        action, reason = OfflineAction.SAVE, "no other host to fail over to outside maintenance"
    else:
        action = OfflineAction.SAVE
        reason = f"all {counted} other host(s) outside maintenance accept its requirement"
    if pinned is not None and pinned != OfflineAction.SAVE and action == OfflineAction.SAVE:
        action, reason = (
            pinned,
            f"cluster {cluster} is pinned to {pinned.name}; processors allow SAVE",
        )
    return VmAction(
        vm,
        cluster,
        action,
        tuple(refusing),
        reason,
        current_host,
        refusing_total=len(refused),
    )
