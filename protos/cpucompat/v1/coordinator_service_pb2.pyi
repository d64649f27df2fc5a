import datetime

from cpucompat.v1 import profile_pb2 as _profile_pb2
from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HostStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOST_STATUS_UNSPECIFIED: _ClassVar[HostStatus]
    HOST_STATUS_ONLINE: _ClassVar[HostStatus]
    HOST_STATUS_STALE: _ClassVar[HostStatus]
    HOST_STATUS_OFFLINE: _ClassVar[HostStatus]

class OfflineAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OFFLINE_ACTION_UNSPECIFIED: _ClassVar[OfflineAction]
    OFFLINE_ACTION_TURN_OFF: _ClassVar[OfflineAction]
    OFFLINE_ACTION_SAVE: _ClassVar[OfflineAction]
    OFFLINE_ACTION_SHUTDOWN: _ClassVar[OfflineAction]
    OFFLINE_ACTION_SHUTDOWN_FORCED: _ClassVar[OfflineAction]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_HOST_JOINED: _ClassVar[EventKind]
    EVENT_KIND_HOST_LEFT: _ClassVar[EventKind]
    EVENT_KIND_STATUS_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_PROFILE_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_POLICY_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_HOST_REMOVED: _ClassVar[EventKind]
    EVENT_KIND_POLICY_PINNED: _ClassVar[EventKind]
    EVENT_KIND_POLICY_UNPINNED: _ClassVar[EventKind]
    EVENT_KIND_VM_REGISTERED: _ClassVar[EventKind]
    EVENT_KIND_VM_REMOVED: _ClassVar[EventKind]
    EVENT_KIND_CLUSTER_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_BASELINE_PINNED: _ClassVar[EventKind]
    EVENT_KIND_BASELINE_UNPINNED: _ClassVar[EventKind]
    EVENT_KIND_HOST_BELOW_BASELINE: _ClassVar[EventKind]
    EVENT_KIND_VM_ACTION_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_MAINTENANCE_CHANGED: _ClassVar[EventKind]

class AuditHostKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_HOST_KIND_UNSPECIFIED: _ClassVar[AuditHostKind]
    AUDIT_HOST_KIND_REGISTERED: _ClassVar[AuditHostKind]
    AUDIT_HOST_KIND_DUMP: _ClassVar[AuditHostKind]
    AUDIT_HOST_KIND_MODEL: _ClassVar[AuditHostKind]

class Hypervisor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HYPERVISOR_UNSPECIFIED: _ClassVar[Hypervisor]
    HYPERVISOR_GENERIC: _ClassVar[Hypervisor]
    HYPERVISOR_KVM: _ClassVar[Hypervisor]

class VmRequirementMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VM_REQUIREMENT_MODE_UNSPECIFIED: _ClassVar[VmRequirementMode]
    VM_REQUIREMENT_MODE_HOST: _ClassVar[VmRequirementMode]
    VM_REQUIREMENT_MODE_BASELINE: _ClassVar[VmRequirementMode]
HOST_STATUS_UNSPECIFIED: HostStatus
HOST_STATUS_ONLINE: HostStatus
HOST_STATUS_STALE: HostStatus
HOST_STATUS_OFFLINE: HostStatus
OFFLINE_ACTION_UNSPECIFIED: OfflineAction
OFFLINE_ACTION_TURN_OFF: OfflineAction
OFFLINE_ACTION_SAVE: OfflineAction
OFFLINE_ACTION_SHUTDOWN: OfflineAction
OFFLINE_ACTION_SHUTDOWN_FORCED: OfflineAction
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_HOST_JOINED: EventKind
EVENT_KIND_HOST_LEFT: EventKind
EVENT_KIND_STATUS_CHANGED: EventKind
EVENT_KIND_PROFILE_CHANGED: EventKind
EVENT_KIND_POLICY_CHANGED: EventKind
EVENT_KIND_HOST_REMOVED: EventKind
EVENT_KIND_POLICY_PINNED: EventKind
EVENT_KIND_POLICY_UNPINNED: EventKind
EVENT_KIND_VM_REGISTERED: EventKind
EVENT_KIND_VM_REMOVED: EventKind
EVENT_KIND_CLUSTER_CHANGED: EventKind
EVENT_KIND_BASELINE_PINNED: EventKind
EVENT_KIND_BASELINE_UNPINNED: EventKind
EVENT_KIND_HOST_BELOW_BASELINE: EventKind
EVENT_KIND_VM_ACTION_CHANGED: EventKind
EVENT_KIND_MAINTENANCE_CHANGED: EventKind
AUDIT_HOST_KIND_UNSPECIFIED: AuditHostKind
AUDIT_HOST_KIND_REGISTERED: AuditHostKind
AUDIT_HOST_KIND_DUMP: AuditHostKind
AUDIT_HOST_KIND_MODEL: AuditHostKind
HYPERVISOR_UNSPECIFIED: Hypervisor
HYPERVISOR_GENERIC: Hypervisor
HYPERVISOR_KVM: Hypervisor
VM_REQUIREMENT_MODE_UNSPECIFIED: VmRequirementMode
VM_REQUIREMENT_MODE_HOST: VmRequirementMode
VM_REQUIREMENT_MODE_BASELINE: VmRequirementMode
HYPERV_OFFLINE_ACTION_FIELD_NUMBER: _ClassVar[int]
hyperv_offline_action: _descriptor.FieldDescriptor

class Host(_message.Message):
    __slots__ = ("host_id", "cluster", "agent_address", "status", "last_seen", "replayed", "fingerprint", "summary", "agent_version", "first_seen", "profile_version", "profile_updated_at", "maintenance", "maintenance_ending", "maintenance_reason")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    AGENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    PROFILE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROFILE_UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_ENDING_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_REASON_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    cluster: str
    agent_address: str
    status: HostStatus
    last_seen: _timestamp_pb2.Timestamp
    replayed: bool
    fingerprint: str
    summary: _profile_pb2.ProfileSummary
    agent_version: str
    first_seen: _timestamp_pb2.Timestamp
    profile_version: int
    profile_updated_at: _timestamp_pb2.Timestamp
    maintenance: bool
    maintenance_ending: bool
    maintenance_reason: str
    def __init__(self, host_id: _Optional[str] = ..., cluster: _Optional[str] = ..., agent_address: _Optional[str] = ..., status: _Optional[_Union[HostStatus, str]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replayed: _Optional[bool] = ..., fingerprint: _Optional[str] = ..., summary: _Optional[_Union[_profile_pb2.ProfileSummary, _Mapping]] = ..., agent_version: _Optional[str] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., profile_version: _Optional[int] = ..., profile_updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., maintenance: _Optional[bool] = ..., maintenance_ending: _Optional[bool] = ..., maintenance_reason: _Optional[str] = ...) -> None: ...

class DumpRef(_message.Message):
    __slots__ = ("name", "raw")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    name: str
    raw: _profile_pb2.RawCapture
    def __init__(self, name: _Optional[str] = ..., raw: _Optional[_Union[_profile_pb2.RawCapture, _Mapping]] = ...) -> None: ...

class HostRef(_message.Message):
    __slots__ = ("host_id", "dump", "model", "vendor")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    DUMP_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    dump: DumpRef
    model: str
    vendor: str
    def __init__(self, host_id: _Optional[str] = ..., dump: _Optional[_Union[DumpRef, _Mapping]] = ..., model: _Optional[str] = ..., vendor: _Optional[str] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("code", "detail", "features", "data")
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    code: str
    detail: str
    features: _containers.RepeatedScalarFieldContainer[str]
    data: _containers.ScalarMap[str, str]
    def __init__(self, code: _Optional[str] = ..., detail: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., data: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Verdict(_message.Message):
    __slots__ = ("compatible", "reasons", "warnings", "summary", "view")
    COMPATIBLE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    compatible: bool
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    warnings: _containers.RepeatedCompositeFieldContainer[Reason]
    summary: str
    view: str
    def __init__(self, compatible: _Optional[bool] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., summary: _Optional[str] = ..., view: _Optional[str] = ...) -> None: ...

class TargetVerdict(_message.Message):
    __slots__ = ("host_id", "status", "verdict")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    status: HostStatus
    verdict: Verdict
    def __init__(self, host_id: _Optional[str] = ..., status: _Optional[_Union[HostStatus, str]] = ..., verdict: _Optional[_Union[Verdict, _Mapping]] = ...) -> None: ...

class PairVerdict(_message.Message):
    __slots__ = ("source", "target", "compatible", "reasons", "source_hosts", "target_hosts")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    COMPATIBLE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HOSTS_FIELD_NUMBER: _ClassVar[int]
    TARGET_HOSTS_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    compatible: bool
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    source_hosts: int
    target_hosts: int
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., compatible: _Optional[bool] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., source_hosts: _Optional[int] = ..., target_hosts: _Optional[int] = ...) -> None: ...

class HostGroup(_message.Message):
    __slots__ = ("hosts",)
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, hosts: _Optional[_Iterable[str]] = ...) -> None: ...

class Baseline(_message.Message):
    __slots__ = ("vendor", "features", "x86_64_level", "microarchitecture", "xsave_mask", "physical_bits")
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    X86_64_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MICROARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    XSAVE_MASK_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_BITS_FIELD_NUMBER: _ClassVar[int]
    vendor: str
    features: _containers.RepeatedScalarFieldContainer[str]
    x86_64_level: str
    microarchitecture: str
    xsave_mask: int
    physical_bits: int
    def __init__(self, vendor: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., x86_64_level: _Optional[str] = ..., microarchitecture: _Optional[str] = ..., xsave_mask: _Optional[int] = ..., physical_bits: _Optional[int] = ...) -> None: ...

class HostLoss(_message.Message):
    __slots__ = ("host", "features")
    HOST_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    host: str
    features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, host: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class BestRemoval(_message.Message):
    __slots__ = ("host", "gained_features", "makes_compatible")
    HOST_FIELD_NUMBER: _ClassVar[int]
    GAINED_FEATURES_FIELD_NUMBER: _ClassVar[int]
    MAKES_COMPATIBLE_FIELD_NUMBER: _ClassVar[int]
    host: str
    gained_features: _containers.RepeatedScalarFieldContainer[str]
    makes_compatible: bool
    def __init__(self, host: _Optional[str] = ..., gained_features: _Optional[_Iterable[str]] = ..., makes_compatible: _Optional[bool] = ...) -> None: ...

class AuditHost(_message.Message):
    __slots__ = ("name", "kind", "status", "fingerprint", "replayed", "summary", "profile")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: AuditHostKind
    status: HostStatus
    fingerprint: str
    replayed: bool
    summary: _profile_pb2.ProfileSummary
    profile: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[AuditHostKind, str]] = ..., status: _Optional[_Union[HostStatus, str]] = ..., fingerprint: _Optional[str] = ..., replayed: _Optional[bool] = ..., summary: _Optional[_Union[_profile_pb2.ProfileSummary, _Mapping]] = ..., profile: _Optional[int] = ...) -> None: ...

class AuditProfile(_message.Message):
    __slots__ = ("fingerprint", "vendor", "brand", "family", "model", "x86_64_level", "group", "loses")
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    X86_64_LEVEL_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    LOSES_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    vendor: str
    brand: str
    family: int
    model: int
    x86_64_level: str
    group: int
    loses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, fingerprint: _Optional[str] = ..., vendor: _Optional[str] = ..., brand: _Optional[str] = ..., family: _Optional[int] = ..., model: _Optional[int] = ..., x86_64_level: _Optional[str] = ..., group: _Optional[int] = ..., loses: _Optional[_Iterable[str]] = ...) -> None: ...

class ProfileRefusal(_message.Message):
    __slots__ = ("source", "target", "reasons")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    source: int
    target: int
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    def __init__(self, source: _Optional[int] = ..., target: _Optional[int] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ...) -> None: ...

class AuditReport(_message.Message):
    __slots__ = ("cluster", "offline_action", "reason", "compatible", "hosts", "pairs", "groups", "baseline", "losses", "best_removal", "vendors", "distinct_profiles", "blocking_pairs", "generated_at", "reasons", "warnings", "profiles", "refusals", "pair_limit", "view")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COMPATIBLE_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    BEST_REMOVAL_FIELD_NUMBER: _ClassVar[int]
    VENDORS_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_PROFILES_FIELD_NUMBER: _ClassVar[int]
    BLOCKING_PAIRS_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    REFUSALS_FIELD_NUMBER: _ClassVar[int]
    PAIR_LIMIT_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    offline_action: OfflineAction
    reason: str
    compatible: bool
    hosts: _containers.RepeatedCompositeFieldContainer[AuditHost]
    pairs: _containers.RepeatedCompositeFieldContainer[PairVerdict]
    groups: _containers.RepeatedCompositeFieldContainer[HostGroup]
    baseline: Baseline
    losses: _containers.RepeatedCompositeFieldContainer[HostLoss]
    best_removal: BestRemoval
    vendors: _containers.RepeatedScalarFieldContainer[str]
    distinct_profiles: int
    blocking_pairs: _containers.RepeatedCompositeFieldContainer[PairVerdict]
    generated_at: _timestamp_pb2.Timestamp
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    warnings: _containers.RepeatedCompositeFieldContainer[Reason]
    profiles: _containers.RepeatedCompositeFieldContainer[AuditProfile]
    refusals: _containers.RepeatedCompositeFieldContainer[ProfileRefusal]
    pair_limit: int
    view: str
    def __init__(self, cluster: _Optional[str] = ..., offline_action: _Optional[_Union[OfflineAction, str]] = ..., reason: _Optional[str] = ..., compatible: _Optional[bool] = ..., hosts: _Optional[_Iterable[_Union[AuditHost, _Mapping]]] = ..., pairs: _Optional[_Iterable[_Union[PairVerdict, _Mapping]]] = ..., groups: _Optional[_Iterable[_Union[HostGroup, _Mapping]]] = ..., baseline: _Optional[_Union[Baseline, _Mapping]] = ..., losses: _Optional[_Iterable[_Union[HostLoss, _Mapping]]] = ..., best_removal: _Optional[_Union[BestRemoval, _Mapping]] = ..., vendors: _Optional[_Iterable[str]] = ..., distinct_profiles: _Optional[int] = ..., blocking_pairs: _Optional[_Iterable[_Union[PairVerdict, _Mapping]]] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., profiles: _Optional[_Iterable[_Union[AuditProfile, _Mapping]]] = ..., refusals: _Optional[_Iterable[_Union[ProfileRefusal, _Mapping]]] = ..., pair_limit: _Optional[int] = ..., view: _Optional[str] = ...) -> None: ...

class ClusterPolicy(_message.Message):
    __slots__ = ("cluster", "action", "computed_action", "pinned_action", "hyperv_offline_action", "reason", "blocking_pairs", "stale_hosts", "updated_at", "version", "host_count", "pin_reason", "blocking_pairs_total", "stale_hosts_total")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_ACTION_FIELD_NUMBER: _ClassVar[int]
    PINNED_ACTION_FIELD_NUMBER: _ClassVar[int]
    HYPERV_OFFLINE_ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BLOCKING_PAIRS_FIELD_NUMBER: _ClassVar[int]
    STALE_HOSTS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HOST_COUNT_FIELD_NUMBER: _ClassVar[int]
    PIN_REASON_FIELD_NUMBER: _ClassVar[int]
    BLOCKING_PAIRS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STALE_HOSTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    action: OfflineAction
    computed_action: OfflineAction
    pinned_action: OfflineAction
    hyperv_offline_action: int
    reason: str
    blocking_pairs: _containers.RepeatedCompositeFieldContainer[PairVerdict]
    stale_hosts: _containers.RepeatedScalarFieldContainer[str]
    updated_at: _timestamp_pb2.Timestamp
    version: int
    host_count: int
    pin_reason: str
    blocking_pairs_total: int
    stale_hosts_total: int
    def __init__(self, cluster: _Optional[str] = ..., action: _Optional[_Union[OfflineAction, str]] = ..., computed_action: _Optional[_Union[OfflineAction, str]] = ..., pinned_action: _Optional[_Union[OfflineAction, str]] = ..., hyperv_offline_action: _Optional[int] = ..., reason: _Optional[str] = ..., blocking_pairs: _Optional[_Iterable[_Union[PairVerdict, _Mapping]]] = ..., stale_hosts: _Optional[_Iterable[str]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., host_count: _Optional[int] = ..., pin_reason: _Optional[str] = ..., blocking_pairs_total: _Optional[int] = ..., stale_hosts_total: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "time", "cluster", "host_id", "kind", "message", "features_gained", "features_lost", "old_status", "new_status", "details", "old_action", "new_action", "vm_name")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FEATURES_GAINED_FIELD_NUMBER: _ClassVar[int]
    FEATURES_LOST_FIELD_NUMBER: _ClassVar[int]
    OLD_STATUS_FIELD_NUMBER: _ClassVar[int]
    NEW_STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    OLD_ACTION_FIELD_NUMBER: _ClassVar[int]
    NEW_ACTION_FIELD_NUMBER: _ClassVar[int]
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    time: _timestamp_pb2.Timestamp
    cluster: str
    host_id: str
    kind: EventKind
    message: str
    features_gained: _containers.RepeatedScalarFieldContainer[str]
    features_lost: _containers.RepeatedScalarFieldContainer[str]
    old_status: HostStatus
    new_status: HostStatus
    details: _containers.ScalarMap[str, str]
    old_action: OfflineAction
    new_action: OfflineAction
    vm_name: str
    def __init__(self, id: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cluster: _Optional[str] = ..., host_id: _Optional[str] = ..., kind: _Optional[_Union[EventKind, str]] = ..., message: _Optional[str] = ..., features_gained: _Optional[_Iterable[str]] = ..., features_lost: _Optional[_Iterable[str]] = ..., old_status: _Optional[_Union[HostStatus, str]] = ..., new_status: _Optional[_Union[HostStatus, str]] = ..., details: _Optional[_Mapping[str, str]] = ..., old_action: _Optional[_Union[OfflineAction, str]] = ..., new_action: _Optional[_Union[OfflineAction, str]] = ..., vm_name: _Optional[str] = ...) -> None: ...

class ProfileVersion(_message.Message):
    __slots__ = ("version", "recorded_at", "fingerprint", "features_gained", "features_lost", "microcode", "replayed", "profile", "offer_fingerprint", "offer_features_gained", "offer_features_lost")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    FEATURES_GAINED_FIELD_NUMBER: _ClassVar[int]
    FEATURES_LOST_FIELD_NUMBER: _ClassVar[int]
    MICROCODE_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    OFFER_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    OFFER_FEATURES_GAINED_FIELD_NUMBER: _ClassVar[int]
    OFFER_FEATURES_LOST_FIELD_NUMBER: _ClassVar[int]
    version: int
    recorded_at: _timestamp_pb2.Timestamp
    fingerprint: str
    features_gained: _containers.RepeatedScalarFieldContainer[str]
    features_lost: _containers.RepeatedScalarFieldContainer[str]
    microcode: str
    replayed: bool
    profile: _profile_pb2.ProcessorProfile
    offer_fingerprint: str
    offer_features_gained: _containers.RepeatedScalarFieldContainer[str]
    offer_features_lost: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[int] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fingerprint: _Optional[str] = ..., features_gained: _Optional[_Iterable[str]] = ..., features_lost: _Optional[_Iterable[str]] = ..., microcode: _Optional[str] = ..., replayed: _Optional[bool] = ..., profile: _Optional[_Union[_profile_pb2.ProcessorProfile, _Mapping]] = ..., offer_fingerprint: _Optional[str] = ..., offer_features_gained: _Optional[_Iterable[str]] = ..., offer_features_lost: _Optional[_Iterable[str]] = ...) -> None: ...

class VmRequirement(_message.Message):
    __slots__ = ("mode", "source", "vendor", "features", "xsave_mask", "physical_bits", "x86_64_level", "family", "model", "tsc_hz", "fingerprint", "captured_at", "invariant_tsc", "sgx_epc", "guest_physical_bits", "avx10_version", "tsc_fixed")
    MODE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    XSAVE_MASK_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_BITS_FIELD_NUMBER: _ClassVar[int]
    X86_64_LEVEL_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TSC_HZ_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    INVARIANT_TSC_FIELD_NUMBER: _ClassVar[int]
    SGX_EPC_FIELD_NUMBER: _ClassVar[int]
    GUEST_PHYSICAL_BITS_FIELD_NUMBER: _ClassVar[int]
    AVX10_VERSION_FIELD_NUMBER: _ClassVar[int]
    TSC_FIXED_FIELD_NUMBER: _ClassVar[int]
    mode: VmRequirementMode
    source: str
    vendor: str
    features: _containers.RepeatedScalarFieldContainer[str]
    xsave_mask: int
    physical_bits: int
    x86_64_level: str
    family: int
    model: int
    tsc_hz: int
    fingerprint: str
    captured_at: _timestamp_pb2.Timestamp
    invariant_tsc: bool
    sgx_epc: bool
    guest_physical_bits: int
    avx10_version: int
    tsc_fixed: bool
    def __init__(self, mode: _Optional[_Union[VmRequirementMode, str]] = ..., source: _Optional[str] = ..., vendor: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., xsave_mask: _Optional[int] = ..., physical_bits: _Optional[int] = ..., x86_64_level: _Optional[str] = ..., family: _Optional[int] = ..., model: _Optional[int] = ..., tsc_hz: _Optional[int] = ..., fingerprint: _Optional[str] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., invariant_tsc: _Optional[bool] = ..., sgx_epc: _Optional[bool] = ..., guest_physical_bits: _Optional[int] = ..., avx10_version: _Optional[int] = ..., tsc_fixed: _Optional[bool] = ...) -> None: ...

class Vm(_message.Message):
    __slots__ = ("name", "cluster", "boot_host", "baseline", "requirement", "registered_at", "booted_at", "cpu_definition", "action")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    BOOT_HOST_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    BOOTED_AT_FIELD_NUMBER: _ClassVar[int]
    CPU_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    cluster: str
    boot_host: str
    baseline: str
    requirement: VmRequirement
    registered_at: _timestamp_pb2.Timestamp
    booted_at: _timestamp_pb2.Timestamp
    cpu_definition: str
    action: VmAction
    def __init__(self, name: _Optional[str] = ..., cluster: _Optional[str] = ..., boot_host: _Optional[str] = ..., baseline: _Optional[str] = ..., requirement: _Optional[_Union[VmRequirement, _Mapping]] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., booted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cpu_definition: _Optional[str] = ..., action: _Optional[_Union[VmAction, _Mapping]] = ...) -> None: ...

class VmAction(_message.Message):
    __slots__ = ("vm_name", "action", "hyperv_offline_action", "refusing_hosts", "reason", "current_host", "refusing_hosts_total")
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    HYPERV_OFFLINE_ACTION_FIELD_NUMBER: _ClassVar[int]
    REFUSING_HOSTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CURRENT_HOST_FIELD_NUMBER: _ClassVar[int]
    REFUSING_HOSTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    vm_name: str
    action: OfflineAction
    hyperv_offline_action: int
    refusing_hosts: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    current_host: str
    refusing_hosts_total: int
    def __init__(self, vm_name: _Optional[str] = ..., action: _Optional[_Union[OfflineAction, str]] = ..., hyperv_offline_action: _Optional[int] = ..., refusing_hosts: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., current_host: _Optional[str] = ..., refusing_hosts_total: _Optional[int] = ...) -> None: ...

class FailoverPlan(_message.Message):
    __slots__ = ("vm_name", "to_host", "action", "hyperv_offline_action", "verdict", "reason", "cluster_action")
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    TO_HOST_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    HYPERV_OFFLINE_ACTION_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ACTION_FIELD_NUMBER: _ClassVar[int]
    vm_name: str
    to_host: str
    action: OfflineAction
    hyperv_offline_action: int
    verdict: Verdict
    reason: str
    cluster_action: OfflineAction
    def __init__(self, vm_name: _Optional[str] = ..., to_host: _Optional[str] = ..., action: _Optional[_Union[OfflineAction, str]] = ..., hyperv_offline_action: _Optional[int] = ..., verdict: _Optional[_Union[Verdict, _Mapping]] = ..., reason: _Optional[str] = ..., cluster_action: _Optional[_Union[OfflineAction, str]] = ...) -> None: ...

class ReportProfileRequest(_message.Message):
    __slots__ = ("host_id", "cluster", "agent_address", "raw", "agent_version", "profile", "probe_interval", "agent_fingerprint")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    AGENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROBE_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    AGENT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    cluster: str
    agent_address: str
    raw: _profile_pb2.RawCapture
    agent_version: str
    profile: _profile_pb2.ProcessorProfile
    probe_interval: _duration_pb2.Duration
    agent_fingerprint: str
    def __init__(self, host_id: _Optional[str] = ..., cluster: _Optional[str] = ..., agent_address: _Optional[str] = ..., raw: _Optional[_Union[_profile_pb2.RawCapture, _Mapping]] = ..., agent_version: _Optional[str] = ..., profile: _Optional[_Union[_profile_pb2.ProcessorProfile, _Mapping]] = ..., probe_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., agent_fingerprint: _Optional[str] = ...) -> None: ...

class ReportProfileResponse(_message.Message):
    __slots__ = ("accepted", "fingerprint", "status", "changed", "profile_version", "reason", "heartbeat_interval")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    PROFILE_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    fingerprint: str
    status: HostStatus
    changed: bool
    profile_version: int
    reason: str
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, accepted: _Optional[bool] = ..., fingerprint: _Optional[str] = ..., status: _Optional[_Union[HostStatus, str]] = ..., changed: _Optional[bool] = ..., profile_version: _Optional[int] = ..., reason: _Optional[str] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("host_id", "cluster", "fingerprint", "probe_interval")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    PROBE_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    cluster: str
    fingerprint: str
    probe_interval: _duration_pb2.Duration
    def __init__(self, host_id: _Optional[str] = ..., cluster: _Optional[str] = ..., fingerprint: _Optional[str] = ..., probe_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("report_required", "reason", "status", "heartbeat_interval")
    REPORT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    report_required: bool
    reason: str
    status: HostStatus
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, report_required: _Optional[bool] = ..., reason: _Optional[str] = ..., status: _Optional[_Union[HostStatus, str]] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class LeaveRequest(_message.Message):
    __slots__ = ("host_id", "cluster", "reason")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    cluster: str
    reason: str
    def __init__(self, host_id: _Optional[str] = ..., cluster: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class LeaveResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: HostStatus
    def __init__(self, status: _Optional[_Union[HostStatus, str]] = ...) -> None: ...

class SetMaintenanceRequest(_message.Message):
    __slots__ = ("host_id", "on", "reason")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    on: bool
    reason: str
    def __init__(self, host_id: _Optional[str] = ..., on: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class SetMaintenanceResponse(_message.Message):
    __slots__ = ("host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    host: Host
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ...) -> None: ...

class ListHostsRequest(_message.Message):
    __slots__ = ("cluster", "page_size", "page_token")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    page_size: int
    page_token: str
    def __init__(self, cluster: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListHostsResponse(_message.Message):
    __slots__ = ("hosts", "next_page_token")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[Host]
    next_page_token: str
    def __init__(self, hosts: _Optional[_Iterable[_Union[Host, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetHostRequest(_message.Message):
    __slots__ = ("host_id", "include_raw")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RAW_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    include_raw: bool
    def __init__(self, host_id: _Optional[str] = ..., include_raw: _Optional[bool] = ...) -> None: ...

class GetHostResponse(_message.Message):
    __slots__ = ("host", "profile", "raw")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    host: Host
    profile: _profile_pb2.ProcessorProfile
    raw: _profile_pb2.RawCapture
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ..., profile: _Optional[_Union[_profile_pb2.ProcessorProfile, _Mapping]] = ..., raw: _Optional[_Union[_profile_pb2.RawCapture, _Mapping]] = ...) -> None: ...

class GetHostHistoryRequest(_message.Message):
    __slots__ = ("host_id", "limit", "include_profiles", "page_size", "page_token")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PROFILES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    limit: int
    include_profiles: bool
    page_size: int
    page_token: str
    def __init__(self, host_id: _Optional[str] = ..., limit: _Optional[int] = ..., include_profiles: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetHostHistoryResponse(_message.Message):
    __slots__ = ("host_id", "versions", "next_page_token")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    versions: _containers.RepeatedCompositeFieldContainer[ProfileVersion]
    next_page_token: str
    def __init__(self, host_id: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[ProfileVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("cluster", "since", "limit", "host_id", "after_id", "newest_first", "page_size", "page_token")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    NEWEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    since: _timestamp_pb2.Timestamp
    limit: int
    host_id: str
    after_id: int
    newest_first: bool
    page_size: int
    page_token: str
    def __init__(self, cluster: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., host_id: _Optional[str] = ..., after_id: _Optional[int] = ..., newest_first: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RemoveHostRequest(_message.Message):
    __slots__ = ("host_id", "force")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    force: bool
    def __init__(self, host_id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RemoveHostResponse(_message.Message):
    __slots__ = ("host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    host: Host
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ("source", "target", "hypervisor")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_FIELD_NUMBER: _ClassVar[int]
    source: HostRef
    target: HostRef
    hypervisor: Hypervisor
    def __init__(self, source: _Optional[_Union[HostRef, _Mapping]] = ..., target: _Optional[_Union[HostRef, _Mapping]] = ..., hypervisor: _Optional[_Union[Hypervisor, str]] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("verdict", "source_label", "target_label")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LABEL_FIELD_NUMBER: _ClassVar[int]
    TARGET_LABEL_FIELD_NUMBER: _ClassVar[int]
    verdict: Verdict
    source_label: str
    target_label: str
    def __init__(self, verdict: _Optional[_Union[Verdict, _Mapping]] = ..., source_label: _Optional[str] = ..., target_label: _Optional[str] = ...) -> None: ...

class TargetsRequest(_message.Message):
    __slots__ = ("source", "cluster", "hypervisor", "page_size", "page_token")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    source: HostRef
    cluster: str
    hypervisor: Hypervisor
    page_size: int
    page_token: str
    def __init__(self, source: _Optional[_Union[HostRef, _Mapping]] = ..., cluster: _Optional[str] = ..., hypervisor: _Optional[_Union[Hypervisor, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class TargetsResponse(_message.Message):
    __slots__ = ("source_label", "targets", "next_page_token")
    SOURCE_LABEL_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    source_label: str
    targets: _containers.RepeatedCompositeFieldContainer[TargetVerdict]
    next_page_token: str
    def __init__(self, source_label: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[TargetVerdict, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AuditRequest(_message.Message):
    __slots__ = ("cluster", "extra_hosts", "hypervisor", "page_size", "page_token")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_HOSTS_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    extra_hosts: _containers.RepeatedCompositeFieldContainer[HostRef]
    hypervisor: Hypervisor
    page_size: int
    page_token: str
    def __init__(self, cluster: _Optional[str] = ..., extra_hosts: _Optional[_Iterable[_Union[HostRef, _Mapping]]] = ..., hypervisor: _Optional[_Union[Hypervisor, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class AuditResponse(_message.Message):
    __slots__ = ("report", "next_page_token")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    report: AuditReport
    next_page_token: str
    def __init__(self, report: _Optional[_Union[AuditReport, _Mapping]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WhatIfRequest(_message.Message):
    __slots__ = ("cluster", "add", "remove", "hypervisor", "page_size", "page_token")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    ADD_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    add: _containers.RepeatedCompositeFieldContainer[HostRef]
    remove: _containers.RepeatedScalarFieldContainer[str]
    hypervisor: Hypervisor
    page_size: int
    page_token: str
    def __init__(self, cluster: _Optional[str] = ..., add: _Optional[_Iterable[_Union[HostRef, _Mapping]]] = ..., remove: _Optional[_Iterable[str]] = ..., hypervisor: _Optional[_Union[Hypervisor, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class WhatIfBaseline(_message.Message):
    __slots__ = ("vendor", "features", "xsave_mask", "physical_bits", "members")
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    XSAVE_MASK_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_BITS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    vendor: str
    features: _containers.RepeatedScalarFieldContainer[str]
    xsave_mask: int
    physical_bits: int
    members: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vendor: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., xsave_mask: _Optional[int] = ..., physical_bits: _Optional[int] = ..., members: _Optional[_Iterable[str]] = ...) -> None: ...

class WhatIfClusterState(_message.Message):
    __slots__ = ("policy", "hosts", "baseline", "baseline_note", "below_pinned_baseline")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_NOTE_FIELD_NUMBER: _ClassVar[int]
    BELOW_PINNED_BASELINE_FIELD_NUMBER: _ClassVar[int]
    policy: ClusterPolicy
    hosts: _containers.RepeatedScalarFieldContainer[str]
    baseline: WhatIfBaseline
    baseline_note: str
    below_pinned_baseline: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, policy: _Optional[_Union[ClusterPolicy, _Mapping]] = ..., hosts: _Optional[_Iterable[str]] = ..., baseline: _Optional[_Union[WhatIfBaseline, _Mapping]] = ..., baseline_note: _Optional[str] = ..., below_pinned_baseline: _Optional[_Iterable[str]] = ...) -> None: ...

class VmWhatIf(_message.Message):
    __slots__ = ("vm_name", "mode", "before", "after", "after_power_cycle", "power_cycle_into")
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    AFTER_POWER_CYCLE_FIELD_NUMBER: _ClassVar[int]
    POWER_CYCLE_INTO_FIELD_NUMBER: _ClassVar[int]
    vm_name: str
    mode: str
    before: VmAction
    after: VmAction
    after_power_cycle: VmAction
    power_cycle_into: str
    def __init__(self, vm_name: _Optional[str] = ..., mode: _Optional[str] = ..., before: _Optional[_Union[VmAction, _Mapping]] = ..., after: _Optional[_Union[VmAction, _Mapping]] = ..., after_power_cycle: _Optional[_Union[VmAction, _Mapping]] = ..., power_cycle_into: _Optional[str] = ...) -> None: ...

class WhatIfResponse(_message.Message):
    __slots__ = ("cluster", "added", "removed", "before", "after", "vms", "lose_save", "regain_save_after_power_cycle", "view", "pinned_baseline", "next_page_token", "snapshot")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    LOSE_SAVE_FIELD_NUMBER: _ClassVar[int]
    REGAIN_SAVE_AFTER_POWER_CYCLE_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    PINNED_BASELINE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    added: _containers.RepeatedScalarFieldContainer[str]
    removed: _containers.RepeatedScalarFieldContainer[str]
    before: WhatIfClusterState
    after: WhatIfClusterState
    vms: _containers.RepeatedCompositeFieldContainer[VmWhatIf]
    lose_save: _containers.RepeatedScalarFieldContainer[str]
    regain_save_after_power_cycle: _containers.RepeatedScalarFieldContainer[str]
    view: str
    pinned_baseline: str
    next_page_token: str
    snapshot: str
    def __init__(self, cluster: _Optional[str] = ..., added: _Optional[_Iterable[str]] = ..., removed: _Optional[_Iterable[str]] = ..., before: _Optional[_Union[WhatIfClusterState, _Mapping]] = ..., after: _Optional[_Union[WhatIfClusterState, _Mapping]] = ..., vms: _Optional[_Iterable[_Union[VmWhatIf, _Mapping]]] = ..., lose_save: _Optional[_Iterable[str]] = ..., regain_save_after_power_cycle: _Optional[_Iterable[str]] = ..., view: _Optional[str] = ..., pinned_baseline: _Optional[str] = ..., next_page_token: _Optional[str] = ..., snapshot: _Optional[str] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    def __init__(self, cluster: _Optional[str] = ...) -> None: ...

class GetPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: ClusterPolicy
    def __init__(self, policy: _Optional[_Union[ClusterPolicy, _Mapping]] = ...) -> None: ...

class ListPoliciesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPoliciesResponse(_message.Message):
    __slots__ = ("policies", "next_page_token")
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[ClusterPolicy]
    next_page_token: str
    def __init__(self, policies: _Optional[_Iterable[_Union[ClusterPolicy, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PinPolicyRequest(_message.Message):
    __slots__ = ("cluster", "action", "reason")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    action: OfflineAction
    reason: str
    def __init__(self, cluster: _Optional[str] = ..., action: _Optional[_Union[OfflineAction, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class PinPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: ClusterPolicy
    def __init__(self, policy: _Optional[_Union[ClusterPolicy, _Mapping]] = ...) -> None: ...

class UnpinPolicyRequest(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    def __init__(self, cluster: _Optional[str] = ...) -> None: ...

class UnpinPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: ClusterPolicy
    def __init__(self, policy: _Optional[_Union[ClusterPolicy, _Mapping]] = ...) -> None: ...

class WatchPolicyRequest(_message.Message):
    __slots__ = ("cluster", "host_id")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    host_id: str
    def __init__(self, cluster: _Optional[str] = ..., host_id: _Optional[str] = ...) -> None: ...

class WatchPolicyResponse(_message.Message):
    __slots__ = ("policy", "vm_actions")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    VM_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    policy: ClusterPolicy
    vm_actions: _containers.RepeatedCompositeFieldContainer[VmAction]
    def __init__(self, policy: _Optional[_Union[ClusterPolicy, _Mapping]] = ..., vm_actions: _Optional[_Iterable[_Union[VmAction, _Mapping]]] = ...) -> None: ...

class RegisterVmRequest(_message.Message):
    __slots__ = ("vm_name", "cluster", "boot_host", "baseline", "vendor", "rebooted", "invtsc", "sgx_epc", "libvirt_xml")
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    BOOT_HOST_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    REBOOTED_FIELD_NUMBER: _ClassVar[int]
    INVTSC_FIELD_NUMBER: _ClassVar[int]
    SGX_EPC_FIELD_NUMBER: _ClassVar[int]
    LIBVIRT_XML_FIELD_NUMBER: _ClassVar[int]
    vm_name: str
    cluster: str
    boot_host: str
    baseline: str
    vendor: str
    rebooted: bool
    invtsc: bool
    sgx_epc: bool
    libvirt_xml: str
    def __init__(self, vm_name: _Optional[str] = ..., cluster: _Optional[str] = ..., boot_host: _Optional[str] = ..., baseline: _Optional[str] = ..., vendor: _Optional[str] = ..., rebooted: _Optional[bool] = ..., invtsc: _Optional[bool] = ..., sgx_epc: _Optional[bool] = ..., libvirt_xml: _Optional[str] = ...) -> None: ...

class RegisterVmResponse(_message.Message):
    __slots__ = ("vm", "created", "requirement_updated")
    VM_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENT_UPDATED_FIELD_NUMBER: _ClassVar[int]
    vm: Vm
    created: bool
    requirement_updated: bool
    def __init__(self, vm: _Optional[_Union[Vm, _Mapping]] = ..., created: _Optional[bool] = ..., requirement_updated: _Optional[bool] = ...) -> None: ...

class ListVmsRequest(_message.Message):
    __slots__ = ("cluster", "page_size", "page_token")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    page_size: int
    page_token: str
    def __init__(self, cluster: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVmsResponse(_message.Message):
    __slots__ = ("vms", "next_page_token")
    VMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    vms: _containers.RepeatedCompositeFieldContainer[Vm]
    next_page_token: str
    def __init__(self, vms: _Optional[_Iterable[_Union[Vm, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetVmTargetsRequest(_message.Message):
    __slots__ = ("vm_name", "page_size", "page_token")
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    vm_name: str
    page_size: int
    page_token: str
    def __init__(self, vm_name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetVmTargetsResponse(_message.Message):
    __slots__ = ("vm", "targets", "next_page_token")
    VM_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    vm: Vm
    targets: _containers.RepeatedCompositeFieldContainer[TargetVerdict]
    next_page_token: str
    def __init__(self, vm: _Optional[_Union[Vm, _Mapping]] = ..., targets: _Optional[_Iterable[_Union[TargetVerdict, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PlanFailoverRequest(_message.Message):
    __slots__ = ("vm_name", "to_host")
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    TO_HOST_FIELD_NUMBER: _ClassVar[int]
    vm_name: str
    to_host: str
    def __init__(self, vm_name: _Optional[str] = ..., to_host: _Optional[str] = ...) -> None: ...

class PlanFailoverResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: FailoverPlan
    def __init__(self, plan: _Optional[_Union[FailoverPlan, _Mapping]] = ...) -> None: ...

class RemoveVmRequest(_message.Message):
    __slots__ = ("vm_name",)
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    vm_name: str
    def __init__(self, vm_name: _Optional[str] = ...) -> None: ...

class RemoveVmResponse(_message.Message):
    __slots__ = ("vm",)
    VM_FIELD_NUMBER: _ClassVar[int]
    vm: Vm
    def __init__(self, vm: _Optional[_Union[Vm, _Mapping]] = ...) -> None: ...

class Admission(_message.Message):
    __slots__ = ("cluster", "pattern", "admitted_at", "admitted_by")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_BY_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    pattern: str
    admitted_at: _timestamp_pb2.Timestamp
    admitted_by: str
    def __init__(self, cluster: _Optional[str] = ..., pattern: _Optional[str] = ..., admitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., admitted_by: _Optional[str] = ...) -> None: ...

class AdmitHostsRequest(_message.Message):
    __slots__ = ("cluster", "patterns")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    PATTERNS_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    patterns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cluster: _Optional[str] = ..., patterns: _Optional[_Iterable[str]] = ...) -> None: ...

class AdmitHostsResponse(_message.Message):
    __slots__ = ("admissions",)
    ADMISSIONS_FIELD_NUMBER: _ClassVar[int]
    admissions: _containers.RepeatedCompositeFieldContainer[Admission]
    def __init__(self, admissions: _Optional[_Iterable[_Union[Admission, _Mapping]]] = ...) -> None: ...

class RevokeHostsRequest(_message.Message):
    __slots__ = ("cluster", "patterns")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    PATTERNS_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    patterns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cluster: _Optional[str] = ..., patterns: _Optional[_Iterable[str]] = ...) -> None: ...

class RevokeHostsResponse(_message.Message):
    __slots__ = ("admissions",)
    ADMISSIONS_FIELD_NUMBER: _ClassVar[int]
    admissions: _containers.RepeatedCompositeFieldContainer[Admission]
    def __init__(self, admissions: _Optional[_Iterable[_Union[Admission, _Mapping]]] = ...) -> None: ...

class ListAdmissionsRequest(_message.Message):
    __slots__ = ("cluster", "page_size", "page_token")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    page_size: int
    page_token: str
    def __init__(self, cluster: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAdmissionsResponse(_message.Message):
    __slots__ = ("admissions", "next_page_token")
    ADMISSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    admissions: _containers.RepeatedCompositeFieldContainer[Admission]
    next_page_token: str
    def __init__(self, admissions: _Optional[_Iterable[_Union[Admission, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BaselineHost(_message.Message):
    __slots__ = ("host_id", "below_baseline", "missing", "summary")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    BELOW_BASELINE_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    below_baseline: bool
    missing: _containers.RepeatedScalarFieldContainer[str]
    summary: str
    def __init__(self, host_id: _Optional[str] = ..., below_baseline: _Optional[bool] = ..., missing: _Optional[_Iterable[str]] = ..., summary: _Optional[str] = ...) -> None: ...

class PinnedBaseline(_message.Message):
    __slots__ = ("cluster", "source", "vendor", "features", "xsave_mask", "physical_bits", "members", "pinned_at", "pinned_by", "hosts")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    XSAVE_MASK_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_BITS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    PINNED_AT_FIELD_NUMBER: _ClassVar[int]
    PINNED_BY_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    source: str
    vendor: str
    features: _containers.RepeatedScalarFieldContainer[str]
    xsave_mask: int
    physical_bits: int
    members: _containers.RepeatedScalarFieldContainer[str]
    pinned_at: _timestamp_pb2.Timestamp
    pinned_by: str
    hosts: _containers.RepeatedCompositeFieldContainer[BaselineHost]
    def __init__(self, cluster: _Optional[str] = ..., source: _Optional[str] = ..., vendor: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., xsave_mask: _Optional[int] = ..., physical_bits: _Optional[int] = ..., members: _Optional[_Iterable[str]] = ..., pinned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pinned_by: _Optional[str] = ..., hosts: _Optional[_Iterable[_Union[BaselineHost, _Mapping]]] = ...) -> None: ...

class PinBaselineRequest(_message.Message):
    __slots__ = ("cluster", "source")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    source: str
    def __init__(self, cluster: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class PinBaselineResponse(_message.Message):
    __slots__ = ("baseline",)
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    baseline: PinnedBaseline
    def __init__(self, baseline: _Optional[_Union[PinnedBaseline, _Mapping]] = ...) -> None: ...

class UnpinBaselineRequest(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    def __init__(self, cluster: _Optional[str] = ...) -> None: ...

class UnpinBaselineResponse(_message.Message):
    __slots__ = ("baseline",)
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    baseline: PinnedBaseline
    def __init__(self, baseline: _Optional[_Union[PinnedBaseline, _Mapping]] = ...) -> None: ...

class GetPinnedBaselineRequest(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    def __init__(self, cluster: _Optional[str] = ...) -> None: ...

class GetPinnedBaselineResponse(_message.Message):
    __slots__ = ("pinned", "baseline")
    PINNED_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    pinned: bool
    baseline: PinnedBaseline
    def __init__(self, pinned: _Optional[bool] = ..., baseline: _Optional[_Union[PinnedBaseline, _Mapping]] = ...) -> None: ...
