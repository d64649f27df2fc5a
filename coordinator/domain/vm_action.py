"""A registered VM's own offline action: SAVE only where every other host can restore it.

Hyper-V sets OfflineAction per VM resource, so one older host need not turn every
VM's planned fail-over into a shutdown: a VM is SAVE when each other member of its
cluster that is not in maintenance is online and accepts the requirement the VM
booted with (`compat.check`, the one decision path); otherwise SHUTDOWN, naming the
hosts that refuse it. A stale, offline or unknown host refuses (fail-safe). An
administrator's colder cluster pin wins, as it does for the cluster's action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .compat import Reason, TargetView, Verdict, check
from .policy import OfflineAction
from .requirement import Requirement

MAX_NAMED_REASONS = 3
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
    """A VM's effective offline action, the hosts that refuse it, and why."""

    vm: str
    cluster: str
    action: OfflineAction
    refusing_hosts: tuple[str, ...]
    reason: str
    current_host: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "cluster": self.cluster,
            "offline_action": self.action.name,
            "hyperv_offline_action": int(self.action),
            "refusing_hosts": list(self.refusing_hosts),
            "reason": self.reason,
        }


def vm_action(
    vm: str,
    cluster: str,
    requirement: Requirement,
    current_host: str | None,
    members: Sequence[Member],
    pinned: OfflineAction | None = None,
) -> VmAction:
    """SAVE when every counted other host accepts ``requirement``; SHUTDOWN naming the rest."""
    refusing: list[str] = []
    why: list[str] = []
    counted = 0
    for m in members:
        if m.host_id == current_host or m.maintenance:
            continue
        counted += 1
        if not m.online:
            refusing.append(m.host_id)
            why.append(f"{m.host_id}: not online (unknown means shutdown)")
            continue
        if m.view is None:
            refusing.append(m.host_id)
            why.append(f"{m.host_id}: no stored profile (unknown means shutdown)")
            continue
        verdict = check(requirement, m.view)
        if not verdict.compatible:
            refusing.append(m.host_id)
            why.append(f"{m.host_id}: {verdict.summary}")
    if refusing:
        shown = "; ".join(why[:MAX_NAMED_REASONS]) + (
            f"; \u2026 and {len(why) - MAX_NAMED_REASONS} more"
            if len(why) > MAX_NAMED_REASONS
            else ""
        )
        action, reason = OfflineAction.SHUTDOWN, f"refused by {', '.join(refusing)}: {shown}"
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
    return VmAction(vm, cluster, action, tuple(refusing), reason, current_host)
