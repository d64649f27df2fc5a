"""The one place where the coordinator's domain types meet the wire (cpucompat.v1).

Servicers call these functions and nothing else touches protobuf, so the
decision and storage code stays plain Python that tests can read.
"""

from __future__ import annotations

from cpucompat.agent.wire import capture_from_proto, profile_to_proto, summary_to_proto
from cpucompat.v1 import coordinator_service_pb2 as pb
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from .domain.hosts import Event, EventKind, HostRecord, HostStatus, ProfileVersion

__all__ = [
    "capture_from_proto",
    "duration_seconds",
    "event_to_proto",
    "host_to_proto",
    "profile_to_proto",
    "status_to_proto",
    "timestamp",
    "timestamp_seconds",
    "version_to_proto",
]

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
    )


def version_to_proto(number: int, version: ProfileVersion) -> pb.ProfileVersion:
    return pb.ProfileVersion(
        version=number,
        recorded_at=timestamp(version.recorded_at),
        fingerprint=version.fingerprint,
        features_gained=list(version.gained),
        features_lost=list(version.lost),
        microcode=str(version.summary.get("microcode") or ""),
        replayed=version.source.startswith("replay:"),
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
    )
    for key, value in details.items():
        msg.details[key] = value if isinstance(value, str) else _compact(value)
    return msg


def _compact(value: object) -> str:
    import json

    return json.dumps(value, sort_keys=True, separators=(",", ":"))
