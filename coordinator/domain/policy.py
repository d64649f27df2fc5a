"""A cluster's planned fail-over action, as Hyper-V failover clustering names it.

`SAVE` only while every host can restore every other host's saved state and
every host's profile is fresh; anything unknown means `SHUTDOWN` (fail-safe).
An administrator may pin a colder action, never a warmer one than the
processors allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

from cpucompat.agent.errors import InputError, RefusalError

STALE_HOSTS_LISTED = 20
"""Stale or offline hosts a policy names (sorted; `stale_total` counts all)."""
STALE_NAMED = 5
"""Of those, how many its one-line reason names."""


class OfflineAction(IntEnum):
    """A VM resource's OfflineAction, with Hyper-V's own numbers."""

    TURN_OFF = 0
    SAVE = 1
    SHUTDOWN = 2
    SHUTDOWN_FORCED = 3

    @classmethod
    def parse(cls, text: str) -> OfflineAction:
        key = text.strip().upper().replace("-", "_")
        if key.isdigit() and int(key) in cls._value2member_map_:
            return cls(int(key))
        try:
            return cls[key]
        except KeyError:
            names = ", ".join(a.name for a in cls)
            raise InputError(f"unknown offline action {text!r}; use one of {names}") from None


class PolicyRefusedError(RefusalError):
    """An administrator asked for an action the processors do not allow (FAILED_PRECONDITION)."""


@dataclass(frozen=True)
class HostState:
    """What the policy needs to know about one member host."""

    name: str
    status: str  # online / stale / offline


class HasState(Protocol):
    """A member as `policy_decision` reads it (`HostState`, the engine's `PolicyInput`)."""

    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...


@dataclass(frozen=True)
class PolicyDecision:
    """The computed and effective actions of one cluster, with why."""

    cluster: str
    action: OfflineAction
    computed: OfflineAction
    pinned: OfflineAction | None
    reason: str
    blocking_pairs: tuple[dict[str, Any], ...] = ()
    """The first blocking pairs (the policy engine lists at most 20)."""
    stale_hosts: tuple[str, ...] = ()
    host_count: int = 0
    pin_reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    blocking_total: int = 0
    """How many blocking pairs there are in all (``blocking_pairs`` may list fewer)."""
    stale_total: int = 0
    """How many hosts are stale or offline (``stale_hosts`` names at most 20)."""

    def same_as(self, other: PolicyDecision | None) -> bool:
        """Equal in everything a watcher cares about (the version aside)."""
        return other is not None and (
            self.action,
            self.computed,
            self.pinned,
            self.reason,
            self.blocking_pairs,
            self.blocking_total,
            self.stale_hosts,
            self.stale_total,
            self.host_count,
            self.pin_reason,
        ) == (
            other.action,
            other.computed,
            other.pinned,
            other.reason,
            other.blocking_pairs,
            other.blocking_total,
            other.stale_hosts,
            other.stale_total,
            other.host_count,
            other.pin_reason,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "action": self.action.name,
            "hyperv_offline_action": int(self.action),
            "computed_action": self.computed.name,
            "pinned_action": self.pinned.name if self.pinned is not None else None,
            "reason": self.reason,
            "blocking_pairs": list(self.blocking_pairs),
            "blocking_pairs_total": self.blocking_total,
            "stale_hosts": list(self.stale_hosts),
            "stale_hosts_total": self.stale_total,
            "host_count": self.host_count,
        }


def _side(name: object, hosts: object) -> str:
    """A pair's side: its example host, and how many more hosts share its profile."""
    more = hosts - 1 if isinstance(hosts, int) else 0
    return f"{name} (+{more} alike)" if more > 0 else str(name)


def _pair_text(pair: dict[str, Any]) -> str:
    codes = ",".join(r.get("code", "?") for r in pair.get("reasons", []))
    source = _side(pair.get("source"), pair.get("source_hosts"))
    target = _side(pair.get("target"), pair.get("target_hosts"))
    return f"{source} -> {target} ({codes})"


def policy_decision(
    cluster: str,
    hosts: Sequence[HasState],
    audit_action: str | None,
    blocking_pairs: Sequence[dict[str, Any]],
    pinned: OfflineAction | None,
    pin_reason: str = "",
    blocking_total: int | None = None,
) -> PolicyDecision:
    """Combine the audit verdict, host freshness and an administrator's pin.

    ``blocking_total``: how many blocking pairs there are when ``blocking_pairs`` lists
    only the first (None: all are listed)."""
    # Named up to STALE_HOSTS_LISTED (the row rides in every watcher's update: a
    # 10,000-host cluster whose agents all went silent must not make it megabytes).
    stale = sorted(h.name for h in hosts if h.status != "online")
    not_fresh = tuple(stale[:STALE_HOSTS_LISTED])
    pairs = tuple(blocking_pairs)
    total = len(pairs) if blocking_total is None else max(blocking_total, len(pairs))
    if not hosts:
        computed, why = (
            OfflineAction.SHUTDOWN,
            "no hosts are registered: nothing is known (fail-safe)",
        )
    elif pairs or audit_action != "SAVE":
        shown = "; ".join(_pair_text(p) for p in pairs[:3]) + (
            f"; \u2026 and {total - 3} more" if total > 3 else ""
        )
        computed, why = (
            OfflineAction.SHUTDOWN,
            f"processors are mixed: {shown or 'audit says SHUTDOWN'}",
        )
    elif not_fresh:
        computed = OfflineAction.SHUTDOWN
        named = ", ".join(stale[:STALE_NAMED]) + (
            f", \u2026 and {len(stale) - STALE_NAMED} more" if len(stale) > STALE_NAMED else ""
        )
        why = f"profile not fresh for {named} (stale or offline): unknown means shutdown"
    else:
        computed, why = (
            OfflineAction.SAVE,
            f"all {len(hosts)} hosts can restore each other's saved state",
        )
    action = computed
    if pinned is not None:
        if pinned == OfflineAction.SAVE and computed != OfflineAction.SAVE:
            why = f"pinned SAVE is overridden: {why}"
        else:
            action = pinned
            why = (
                f"pinned {pinned.name} by an administrator"
                + (f" ({pin_reason})" if pin_reason else "")
                + f"; processors allow {computed.name}"
            )
    return PolicyDecision(
        cluster=cluster,
        action=action,
        computed=computed,
        pinned=pinned,
        reason=why,
        blocking_pairs=pairs,
        stale_hosts=not_fresh,
        stale_total=len(stale),
        host_count=len(hosts),
        pin_reason=pin_reason,
        blocking_total=total,
    )


def check_pin(decision: PolicyDecision, wanted: OfflineAction) -> None:
    """Refuse pinning SAVE where the processors force a cold fail-over."""
    if wanted == OfflineAction.SAVE and decision.computed != OfflineAction.SAVE:
        pairs = decision.blocking_pairs
        total = max(decision.blocking_total, len(pairs))
        blocking = "; ".join(_pair_text(p) for p in pairs[:5]) + (
            f"; \u2026 and {total - 5} more" if total > 5 else ""
        )
        raise PolicyRefusedError(
            f"cannot pin SAVE on cluster {decision.cluster}: {decision.reason}"
            + (f" [blocking: {blocking}]" if blocking and blocking not in decision.reason else "")
        )
