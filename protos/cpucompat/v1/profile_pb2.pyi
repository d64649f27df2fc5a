import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CpuidRegister(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CPUID_REGISTER_UNSPECIFIED: _ClassVar[CpuidRegister]
    CPUID_REGISTER_EAX: _ClassVar[CpuidRegister]
    CPUID_REGISTER_EBX: _ClassVar[CpuidRegister]
    CPUID_REGISTER_ECX: _ClassVar[CpuidRegister]
    CPUID_REGISTER_EDX: _ClassVar[CpuidRegister]
CPUID_REGISTER_UNSPECIFIED: CpuidRegister
CPUID_REGISTER_EAX: CpuidRegister
CPUID_REGISTER_EBX: CpuidRegister
CPUID_REGISTER_ECX: CpuidRegister
CPUID_REGISTER_EDX: CpuidRegister

class CpuidLeaf(_message.Message):
    __slots__ = ("leaf", "subleaf", "eax", "ebx", "ecx", "edx")
    LEAF_FIELD_NUMBER: _ClassVar[int]
    SUBLEAF_FIELD_NUMBER: _ClassVar[int]
    EAX_FIELD_NUMBER: _ClassVar[int]
    EBX_FIELD_NUMBER: _ClassVar[int]
    ECX_FIELD_NUMBER: _ClassVar[int]
    EDX_FIELD_NUMBER: _ClassVar[int]
    leaf: int
    subleaf: int
    eax: int
    ebx: int
    ecx: int
    edx: int
    def __init__(self, leaf: _Optional[int] = ..., subleaf: _Optional[int] = ..., eax: _Optional[int] = ..., ebx: _Optional[int] = ..., ecx: _Optional[int] = ..., edx: _Optional[int] = ...) -> None: ...

class LogicalCpuLeaves(_message.Message):
    __slots__ = ("cpu", "leaves", "xcr0")
    CPU_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    XCR0_FIELD_NUMBER: _ClassVar[int]
    cpu: int
    leaves: _containers.RepeatedCompositeFieldContainer[CpuidLeaf]
    xcr0: int
    def __init__(self, cpu: _Optional[int] = ..., leaves: _Optional[_Iterable[_Union[CpuidLeaf, _Mapping]]] = ..., xcr0: _Optional[int] = ...) -> None: ...

class CpuClass(_message.Message):
    __slots__ = ("leaves",)
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    leaves: _containers.RepeatedCompositeFieldContainer[CpuidLeaf]
    def __init__(self, leaves: _Optional[_Iterable[_Union[CpuidLeaf, _Mapping]]] = ...) -> None: ...

class RegisterOverride(_message.Message):
    __slots__ = ("leaf", "subleaf", "register", "value")
    LEAF_FIELD_NUMBER: _ClassVar[int]
    SUBLEAF_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    leaf: int
    subleaf: int
    register: CpuidRegister
    value: int
    def __init__(self, leaf: _Optional[int] = ..., subleaf: _Optional[int] = ..., register: _Optional[_Union[CpuidRegister, str]] = ..., value: _Optional[int] = ...) -> None: ...

class CompactCpu(_message.Message):
    __slots__ = ("cpu", "cpu_class", "xcr0", "overrides")
    CPU_FIELD_NUMBER: _ClassVar[int]
    CPU_CLASS_FIELD_NUMBER: _ClassVar[int]
    XCR0_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    cpu: int
    cpu_class: int
    xcr0: int
    overrides: _containers.RepeatedCompositeFieldContainer[RegisterOverride]
    def __init__(self, cpu: _Optional[int] = ..., cpu_class: _Optional[int] = ..., xcr0: _Optional[int] = ..., overrides: _Optional[_Iterable[_Union[RegisterOverride, _Mapping]]] = ...) -> None: ...

class RawCapture(_message.Message):
    __slots__ = ("cpus", "source", "microcode", "origin", "extra", "captured_at", "hypervisor_offer", "hypervisor_offer_missing", "host_tsc", "cpu_classes", "compact_cpus")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CPUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MICROCODE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_OFFER_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_OFFER_MISSING_FIELD_NUMBER: _ClassVar[int]
    HOST_TSC_FIELD_NUMBER: _ClassVar[int]
    CPU_CLASSES_FIELD_NUMBER: _ClassVar[int]
    COMPACT_CPUS_FIELD_NUMBER: _ClassVar[int]
    cpus: _containers.RepeatedCompositeFieldContainer[LogicalCpuLeaves]
    source: str
    microcode: str
    origin: str
    extra: _containers.ScalarMap[str, str]
    captured_at: _timestamp_pb2.Timestamp
    hypervisor_offer: RawHypervisorOffer
    hypervisor_offer_missing: str
    host_tsc: HostTsc
    cpu_classes: _containers.RepeatedCompositeFieldContainer[CpuClass]
    compact_cpus: _containers.RepeatedCompositeFieldContainer[CompactCpu]
    def __init__(self, cpus: _Optional[_Iterable[_Union[LogicalCpuLeaves, _Mapping]]] = ..., source: _Optional[str] = ..., microcode: _Optional[str] = ..., origin: _Optional[str] = ..., extra: _Optional[_Mapping[str, str]] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hypervisor_offer: _Optional[_Union[RawHypervisorOffer, _Mapping]] = ..., hypervisor_offer_missing: _Optional[str] = ..., host_tsc: _Optional[_Union[HostTsc, _Mapping]] = ..., cpu_classes: _Optional[_Iterable[_Union[CpuClass, _Mapping]]] = ..., compact_cpus: _Optional[_Iterable[_Union[CompactCpu, _Mapping]]] = ...) -> None: ...

class HostTsc(_message.Message):
    __slots__ = ("khz", "source", "scaling", "scaling_source", "missing")
    KHZ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    SCALING_SOURCE_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    khz: int
    source: str
    scaling: bool
    scaling_source: str
    missing: str
    def __init__(self, khz: _Optional[int] = ..., source: _Optional[str] = ..., scaling: _Optional[bool] = ..., scaling_source: _Optional[str] = ..., missing: _Optional[str] = ...) -> None: ...

class Tsc(_message.Message):
    __slots__ = ("hz", "source", "scaling", "scaling_source", "missing")
    HZ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    SCALING_SOURCE_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    hz: int
    source: str
    scaling: bool
    scaling_source: str
    missing: str
    def __init__(self, hz: _Optional[int] = ..., source: _Optional[str] = ..., scaling: _Optional[bool] = ..., scaling_source: _Optional[str] = ..., missing: _Optional[str] = ...) -> None: ...

class FeatureMsr(_message.Message):
    __slots__ = ("index", "value", "name")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    index: int
    value: int
    name: str
    def __init__(self, index: _Optional[int] = ..., value: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class RawHypervisorOffer(_message.Message):
    __slots__ = ("kind", "api_version", "leaves", "msrs")
    KIND_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    MSRS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    api_version: int
    leaves: _containers.RepeatedCompositeFieldContainer[CpuidLeaf]
    msrs: _containers.RepeatedCompositeFieldContainer[FeatureMsr]
    def __init__(self, kind: _Optional[str] = ..., api_version: _Optional[int] = ..., leaves: _Optional[_Iterable[_Union[CpuidLeaf, _Mapping]]] = ..., msrs: _Optional[_Iterable[_Union[FeatureMsr, _Mapping]]] = ...) -> None: ...

class HypervisorOffer(_message.Message):
    __slots__ = ("kind", "api_version", "features", "msrs", "fingerprint", "replayed")
    KIND_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    MSRS_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    kind: str
    api_version: int
    features: _containers.RepeatedScalarFieldContainer[str]
    msrs: _containers.RepeatedCompositeFieldContainer[FeatureMsr]
    fingerprint: str
    replayed: bool
    def __init__(self, kind: _Optional[str] = ..., api_version: _Optional[int] = ..., features: _Optional[_Iterable[str]] = ..., msrs: _Optional[_Iterable[_Union[FeatureMsr, _Mapping]]] = ..., fingerprint: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class XsaveComponent(_message.Message):
    __slots__ = ("index", "name", "size", "offset", "supervisor")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SUPERVISOR_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    size: int
    offset: int
    supervisor: bool
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., size: _Optional[int] = ..., offset: _Optional[int] = ..., supervisor: _Optional[bool] = ...) -> None: ...

class Xsave(_message.Message):
    __slots__ = ("supported_mask", "enabled_mask", "components", "max_size", "supervisor_mask")
    SUPPORTED_MASK_FIELD_NUMBER: _ClassVar[int]
    ENABLED_MASK_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    SUPERVISOR_MASK_FIELD_NUMBER: _ClassVar[int]
    supported_mask: int
    enabled_mask: int
    components: _containers.RepeatedCompositeFieldContainer[XsaveComponent]
    max_size: int
    supervisor_mask: int
    def __init__(self, supported_mask: _Optional[int] = ..., enabled_mask: _Optional[int] = ..., components: _Optional[_Iterable[_Union[XsaveComponent, _Mapping]]] = ..., max_size: _Optional[int] = ..., supervisor_mask: _Optional[int] = ...) -> None: ...

class AddressSizes(_message.Message):
    __slots__ = ("physical_bits", "linear_bits", "guest_physical_bits")
    PHYSICAL_BITS_FIELD_NUMBER: _ClassVar[int]
    LINEAR_BITS_FIELD_NUMBER: _ClassVar[int]
    GUEST_PHYSICAL_BITS_FIELD_NUMBER: _ClassVar[int]
    physical_bits: int
    linear_bits: int
    guest_physical_bits: int
    def __init__(self, physical_bits: _Optional[int] = ..., linear_bits: _Optional[int] = ..., guest_physical_bits: _Optional[int] = ...) -> None: ...

class CpuType(_message.Message):
    __slots__ = ("logical_cpus", "features", "fingerprint", "family", "model", "stepping", "core_type")
    LOGICAL_CPUS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STEPPING_FIELD_NUMBER: _ClassVar[int]
    CORE_TYPE_FIELD_NUMBER: _ClassVar[int]
    logical_cpus: _containers.RepeatedScalarFieldContainer[int]
    features: _containers.RepeatedScalarFieldContainer[str]
    fingerprint: str
    family: int
    model: int
    stepping: int
    core_type: str
    def __init__(self, logical_cpus: _Optional[_Iterable[int]] = ..., features: _Optional[_Iterable[str]] = ..., fingerprint: _Optional[str] = ..., family: _Optional[int] = ..., model: _Optional[int] = ..., stepping: _Optional[int] = ..., core_type: _Optional[str] = ...) -> None: ...

class ProcessorProfile(_message.Message):
    __slots__ = ("vendor", "brand", "family", "model", "stepping", "x86_64_level", "features", "cpu_types", "xsave", "address_sizes", "hypervisor", "invariant_tsc", "tsc_hz", "microcode", "source", "replayed", "fingerprint", "origin", "logical_cpu_count", "microarchitecture", "hypervisor_offer", "hypervisor_offer_missing", "tsc", "avx10_version")
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STEPPING_FIELD_NUMBER: _ClassVar[int]
    X86_64_LEVEL_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CPU_TYPES_FIELD_NUMBER: _ClassVar[int]
    XSAVE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_SIZES_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_FIELD_NUMBER: _ClassVar[int]
    INVARIANT_TSC_FIELD_NUMBER: _ClassVar[int]
    TSC_HZ_FIELD_NUMBER: _ClassVar[int]
    MICROCODE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_CPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    MICROARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_OFFER_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_OFFER_MISSING_FIELD_NUMBER: _ClassVar[int]
    TSC_FIELD_NUMBER: _ClassVar[int]
    AVX10_VERSION_FIELD_NUMBER: _ClassVar[int]
    vendor: str
    brand: str
    family: int
    model: int
    stepping: int
    x86_64_level: str
    features: _containers.RepeatedScalarFieldContainer[str]
    cpu_types: _containers.RepeatedCompositeFieldContainer[CpuType]
    xsave: Xsave
    address_sizes: AddressSizes
    hypervisor: str
    invariant_tsc: bool
    tsc_hz: int
    microcode: str
    source: str
    replayed: bool
    fingerprint: str
    origin: str
    logical_cpu_count: int
    microarchitecture: str
    hypervisor_offer: HypervisorOffer
    hypervisor_offer_missing: str
    tsc: Tsc
    avx10_version: int
    def __init__(self, vendor: _Optional[str] = ..., brand: _Optional[str] = ..., family: _Optional[int] = ..., model: _Optional[int] = ..., stepping: _Optional[int] = ..., x86_64_level: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., cpu_types: _Optional[_Iterable[_Union[CpuType, _Mapping]]] = ..., xsave: _Optional[_Union[Xsave, _Mapping]] = ..., address_sizes: _Optional[_Union[AddressSizes, _Mapping]] = ..., hypervisor: _Optional[str] = ..., invariant_tsc: _Optional[bool] = ..., tsc_hz: _Optional[int] = ..., microcode: _Optional[str] = ..., source: _Optional[str] = ..., replayed: _Optional[bool] = ..., fingerprint: _Optional[str] = ..., origin: _Optional[str] = ..., logical_cpu_count: _Optional[int] = ..., microarchitecture: _Optional[str] = ..., hypervisor_offer: _Optional[_Union[HypervisorOffer, _Mapping]] = ..., hypervisor_offer_missing: _Optional[str] = ..., tsc: _Optional[_Union[Tsc, _Mapping]] = ..., avx10_version: _Optional[int] = ...) -> None: ...

class ProfileSummary(_message.Message):
    __slots__ = ("vendor", "brand", "family", "model", "stepping", "x86_64_level", "microarchitecture", "hypervisor", "feature_count", "logical_cpu_count", "cpu_type_count", "physical_bits", "microcode", "source")
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STEPPING_FIELD_NUMBER: _ClassVar[int]
    X86_64_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MICROARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_CPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    CPU_TYPE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_BITS_FIELD_NUMBER: _ClassVar[int]
    MICROCODE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    vendor: str
    brand: str
    family: int
    model: int
    stepping: int
    x86_64_level: str
    microarchitecture: str
    hypervisor: str
    feature_count: int
    logical_cpu_count: int
    cpu_type_count: int
    physical_bits: int
    microcode: str
    source: str
    def __init__(self, vendor: _Optional[str] = ..., brand: _Optional[str] = ..., family: _Optional[int] = ..., model: _Optional[int] = ..., stepping: _Optional[int] = ..., x86_64_level: _Optional[str] = ..., microarchitecture: _Optional[str] = ..., hypervisor: _Optional[str] = ..., feature_count: _Optional[int] = ..., logical_cpu_count: _Optional[int] = ..., cpu_type_count: _Optional[int] = ..., physical_bits: _Optional[int] = ..., microcode: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...
