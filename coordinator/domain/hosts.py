"""What the coordinator knows about hosts: records, profile versions, events."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cpucompat.agent.profile import Profile


class HostStatus(StrEnum):
    ONLINE = "online"
    STALE = "stale"  # three heartbeats missed
    OFFLINE = "offline"  # its agent said it is stopping


class EventKind(StrEnum):
    HOST_JOINED = "host_joined"
    HOST_LEFT = "host_left"
    HOST_REMOVED = "host_removed"
    STATUS_CHANGED = "status_changed"
    PROFILE_CHANGED = "profile_changed"
    CLUSTER_CHANGED = "cluster_changed"
    POLICY_CHANGED = "policy_changed"
    VM_REGISTERED = "vm_registered"
    VM_REMOVED = "vm_removed"
    BASELINE_PINNED = "baseline_pinned"
    BASELINE_UNPINNED = "baseline_unpinned"
    HOST_BELOW_BASELINE = "host_below_baseline"
    VM_ACTION_CHANGED = "vm_action_changed"
    MAINTENANCE_CHANGED = "maintenance_changed"


MISSED_HEARTBEATS_FOR_STALE = 3


@dataclass(frozen=True)
class HostRecord:
    """One registered host as stored, with its current decoded profile."""

    host_id: str
    cluster: str
    agent_address: str
    status: HostStatus
    replayed: bool
    fingerprint: str
    first_seen: float
    last_seen: float
    heartbeat_interval: float
    profile_version: int
    profile: Profile = field(repr=False)
    agent_version: str = ""
    maintenance: str = ""  # "" none, "on", "ending" (off asked; ends at the next fresh report)
    maintenance_reason: str = ""
    agent_fingerprint: str = ""  # the agent's own fingerprint of its last report

    @property
    def in_maintenance(self) -> bool:
        """No fail-over target and no say in any action until maintenance has ended."""
        return bool(self.maintenance)

    def stale_after(self) -> float:
        """The time after which this host counts as stale."""
        return self.last_seen + MISSED_HEARTBEATS_FOR_STALE * self.heartbeat_interval


@dataclass(frozen=True)
class ProfileVersion:
    """One entry of a host's profile history."""

    version: int
    host_id: str
    recorded_at: float
    fingerprint: str
    source: str
    features: tuple[str, ...]
    gained: tuple[str, ...]
    lost: tuple[str, ...]
    summary: dict[str, Any]


@dataclass(frozen=True)
class Event:
    """One line of the event log: something happened to a host, a cluster or a VM."""

    id: int
    time: float
    cluster: str
    host_id: str
    kind: EventKind
    message: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "cluster": self.cluster,
            "host_id": self.host_id,
            "kind": self.kind.value,
            "message": self.message,
            "details": self.details,
        }
