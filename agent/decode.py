"""The one decoder: raw CPUID leaves -> :class:`Profile`.

Live probes, replayed dumps and the coordinator's re-decoding of reports
all come through :func:`decode`, so a newer feature table changes every
view at once and never needs a newer agent.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from .cpu_classes import SplitCpus
from .feature_table import AMD_LIKE, FEATURE_BITS, INTEL, FeatureBit, FeatureClass
from .profile import AddressSizes, CpuType, HypervisorOffer, Profile, Tsc, Xsave, XsaveComponent
from .raw import REG_INDEX, LogicalCpu, RawCapture, RawDataError, RawOffer, vendor_string

FINGERPRINT_VERSION = 1

# Leaves a CPU type's decoding reads beyond the feature words: the range heads (maximum
# leaves), family/model/stepping, the hybrid flag and core type, address sizes.
_VIEW_LEAVES = frozenset(
    {(0x0, 0), (0x1, 0), (0x7, 0), (0x1A, 0), (0x8000_0000, 0), (0x8000_0008, 0)}
    | {(0xC000_0000, 0)}
    | {(fb.leaf, fb.subleaf) for fb in FEATURE_BITS}
)
# (leaf, register index) -> mask of the bits a CPU type's decoding reads; the rest is
# per-CPU (APIC IDs, topology) and would only defeat the per-capture cache.
_VIEW_MASKS: Mapping[tuple[int, int], int] = {
    (0x1, 1): 0x00FF_FFFF,  # EBX[31:24]: initial APIC ID
    (0x8000_0026, 1): 0xF000_0000,  # EBX[31:28]: core type (the rest: topology, ranking)
    (0x8000_0026, 2): 0,  # ECX: level type and number
    (0x8000_0026, 3): 0,  # EDX: extended APIC ID
}

XSAVE_COMPONENT_NAMES = {
    0: "x87",
    1: "sse",
    2: "avx",
    3: "mpx_bndregs",
    4: "mpx_bndcsr",
    5: "avx512_opmask",
    6: "avx512_zmm_hi256",
    7: "avx512_hi16_zmm",
    8: "pt",
    9: "pkru",
    10: "pasid",
    11: "cet_u",
    12: "cet_s",
    13: "hdc",
    14: "uintr",
    15: "lbr",
    16: "hwp",
    17: "amx_tilecfg",
    18: "amx_tiledata",
    19: "apx",
    62: "lwp",  # AMD lightweight profiling
}

# glibc's x86-64 psABI levels: each needs its own features and all lower ones.
LEVEL_FEATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("x86-64-v1", frozenset({"lm", "cmov", "cx8", "fpu", "fxsr", "mmx", "sse", "sse2"})),
    (
        "x86-64-v2",
        frozenset({"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}),
    ),
    (
        "x86-64-v3",
        frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "osxsave"}),
    ),
    ("x86-64-v4", frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})),
)
# State the OS must have enabled in XCR0 for a level to be usable (checked when XCR0 is known).
LEVEL_XCR0 = {"x86-64-v3": 0b110, "x86-64-v4": 0b1110_0110}

# Core types as the processor reports them (docs/design-notes.md, "CPU types are core types").
# Intel CPUID.1AH:EAX[31:24], read when CPUID.7.0:EDX[15] (hybrid) is set (Linux
# get_this_hybrid_cpu_type(); INTEL_CPU_TYPE_ATOM/CORE in asm/intel-family.h).
INTEL_CORE_TYPES = {0x20: "efficiency", 0x40: "performance"}
# AMD CPUID.80000026h.0:EBX[31:28], read when CPUID.80000026h.0:EAX[30] (heterogeneous
# cores) is set (Linux parse_topology_amd(), get_topology_cpu_type()).
AMD_CORE_TYPES = {0: "performance", 1: "efficiency", 2: "low-power"}
# Family 1Ah model ranges of each Zen generation, as Linux's bsp_init_amd() sets
# X86_FEATURE_ZEN5/ZEN6; on those the core types are named after the cores (zen5, zen5c).
AMD_1AH_GENERATIONS: tuple[tuple[int, int, str], ...] = (
    (0x00, 0x2F, "zen5"),
    (0x40, 0x4F, "zen5"),
    (0x60, 0x7F, "zen5"),
    (0x50, 0x5F, "zen6"),
    (0x80, 0xAF, "zen6"),
    (0xC0, 0xCF, "zen6"),
)
HYBRID_BIT = 1 << 15  # CPUID.7.0:EDX[15]
HETEROGENEOUS_CORES_BIT = 1 << 30  # CPUID.80000026h.0:EAX[30]

HYPERVISOR_BIT = 1 << 31


def _text(regs: Iterable[int]) -> str:
    raw = b"".join(r.to_bytes(4, "little") for r in regs)
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def vendor_of(cpu: LogicalCpu) -> str:
    head = cpu.get(0)
    if head is None:
        raise RawDataError(f"logical CPU {cpu.index} has no leaf 0 (vendor string)")
    return vendor_string(head)


def family_model_stepping(eax: int) -> tuple[int, int, int]:
    """Display family/model/stepping from CPUID.1:EAX, by Linux's rule.

    Family adds the extended family only for base family 0xF (Intel and
    AMD agree); the extended model counts from family 6 up, which covers
    Intel's 6 and 0xF, AMD's 0xF and later, and Zhaoxin's family 7.
    """
    stepping = eax & 0xF
    model = eax >> 4 & 0xF
    family = eax >> 8 & 0xF
    if family == 0xF:
        family += eax >> 20 & 0xFF
    if family >= 6:
        model += (eax >> 16 & 0xF) << 4
    return family, model, stepping


def _bit_set(cpu: LogicalCpu, fb: FeatureBit) -> bool:
    regs = cpu.leaves.get((fb.leaf, fb.subleaf))
    return regs is not None and bool(regs[REG_INDEX[fb.reg]] >> fb.bit & 1)


def _leaf_valid(cpu: LogicalCpu, leaf: int) -> bool:
    base = leaf & 0xF000_0000
    top = cpu.max_leaf(base)
    return top is not None and leaf <= top


def features_of(cpu: LogicalCpu, vendor: str) -> frozenset[str]:
    """Every named feature bit the CPU reports, within the leaves it says are valid."""
    valid: dict[int, bool] = {}
    names = set()
    for fb in FEATURE_BITS:
        if fb.vendors is not None and vendor not in fb.vendors:
            continue
        ok = valid.get(fb.leaf)
        if ok is None:
            ok = valid[fb.leaf] = _leaf_valid(cpu, fb.leaf)
        if ok and _bit_set(cpu, fb):
            names.add(fb.name)
    return frozenset(names)


# Leaves whose subleaf 0 EAX gives the highest valid subleaf.
COUNTED_SUBLEAF_LEAVES = frozenset({0x7, 0x14, 0x17, 0x18, 0x1D, 0x20, 0x24})


def _subleaf_expected(cpu: LogicalCpu, leaf: int, subleaf: int) -> bool:
    if subleaf == 0 or (leaf == 0xD and subleaf == 1):
        return True
    if leaf in COUNTED_SUBLEAF_LEAVES:
        return subleaf <= cpu.reg(leaf, 0, "eax")
    return False


def unknown_features_of(cpu: LogicalCpu, vendor: str) -> frozenset[str]:
    """Features whose leaf the processor defines but the capture lacks.

    Some dump tools record fixed leaf sets (libcpuid has no leaf 7 subleaf 1,
    no 0xD subleaf 1, nothing from 0x80000020 up): reading those bits as zero
    would invent missing features. They are unknown instead.
    """
    names = set()
    for fb in FEATURE_BITS:
        if fb.vendors is not None and vendor not in fb.vendors:
            continue
        if (fb.leaf, fb.subleaf) in cpu.leaves or not _leaf_valid(cpu, fb.leaf):
            continue
        if _subleaf_expected(cpu, fb.leaf, fb.subleaf):
            names.add(fb.name)
    return frozenset(names)


def psabi_level(features: frozenset[str], xcr0: int | None) -> str | None:
    """The highest x86-64 level whose features (and all lower ones) are present."""
    level = None
    for name, needed in LEVEL_FEATURES:
        if not needed <= features:
            break
        want = LEVEL_XCR0.get(name)
        if want is not None and xcr0 is not None and xcr0 & want != want:
            break
        level = name
    return level


def _xsave(cpu: LogicalCpu) -> Xsave:
    head = cpu.get(0xD, 0)
    if head is None or not _leaf_valid(cpu, 0xD):
        return Xsave(enabled_mask=cpu.xcr0)
    user = head[0] | head[3] << 32
    sub1 = cpu.get(0xD, 1) or (0, 0, 0, 0)
    supervisor = sub1[2] | sub1[3] << 32
    components = []
    for index in range(64):
        if not (user | supervisor) >> index & 1:
            continue
        if index == 0:
            size, offset = 160, 0
        elif index == 1:
            size, offset = 256, 160
        else:
            regs = cpu.get(0xD, index) or (0, 0, 0, 0)
            size, offset = regs[0], regs[1]
        components.append(
            XsaveComponent(
                index=index,
                name=XSAVE_COMPONENT_NAMES.get(index, f"component{index}"),
                size=size,
                offset=offset,
                supervisor=bool(supervisor >> index & 1),
            )
        )
    return Xsave(
        supported_mask=user,
        supervisor_mask=supervisor,
        enabled_mask=cpu.xcr0,
        max_size=head[2],
        components=tuple(components),
    )


def _address_sizes(cpu: LogicalCpu, features: frozenset[str]) -> AddressSizes:
    regs = cpu.get(0x80000008) if _leaf_valid(cpu, 0x80000008) else None
    if regs is not None and regs[0] & 0xFF:
        # EAX[23:16]: guest physical width (AMD APM; KVM and QEMU's guest-phys-bits fill it,
        # processors leave it 0, which means "the physical width").
        return AddressSizes(
            physical_bits=regs[0] & 0xFF,
            linear_bits=regs[0] >> 8 & 0xFF,
            guest_physical_bits=regs[0] >> 16 & 0xFF or None,
        )
    # No leaf 0x80000008: the SDM's defaults for 32-bit parts.
    physical = 36 if "pae" in features or "pse36" in features else 32
    return AddressSizes(physical_bits=physical, linear_bits=48 if "lm" in features else 32)


def _hypervisor(cpu: LogicalCpu) -> str | None:
    leaf1 = cpu.get(1)
    if leaf1 is None or not leaf1[2] & HYPERVISOR_BIT:
        return None
    head = cpu.get(0x4000_0000)
    if head is None:
        return "unknown"
    name = _text(head[1:4])
    return name or "unknown"


def _tsc_hz(cpu: LogicalCpu, hypervisor: str | None) -> int | None:
    """TSC frequency where CPUID states it: leaf 0x15, else a hypervisor's timing leaf."""
    if _leaf_valid(cpu, 0x15):
        denominator, numerator, crystal, _ = cpu.get(0x15) or (0, 0, 0, 0)
        if denominator and numerator and crystal:
            return crystal * numerator // denominator
        if denominator and numerator and _leaf_valid(cpu, 0x16):
            # No crystal frequency (Skylake and its server parts): Linux derives it from the
            # base frequency in leaf 0x16, which the TSC runs at.
            base_mhz = (cpu.get(0x16) or (0, 0, 0, 0))[0] & 0xFFFF
            if base_mhz:
                return base_mhz * 1_000_000
    if hypervisor is not None and _leaf_valid(cpu, 0x4000_0010):
        khz = (cpu.get(0x4000_0010) or (0, 0, 0, 0))[0]
        if khz:
            return khz * 1000
    return None


class _Unknown:
    """A value the capture cannot tell for one CPU (its leaf is missing from the dump)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


def _avx10_version(cpu: LogicalCpu, features: frozenset[str]) -> int | None:
    """CPUID 0x24 EBX[7:0] (Intel AVX10 spec): the version, on a processor with AVX10."""
    if "avx10" not in features or not _leaf_valid(cpu, 0x24):
        return None
    regs = cpu.get(0x24)
    return (regs[1] & 0xFF or None) if regs is not None else None


def _tsc(capture: RawCapture, cpu_hz: int | None, features: frozenset[str]) -> Tsc:
    """The rate from the host kernel (live) or CPUID (dumps); scaling from the hardware.

    The kernel's report rides beside the leaves (`RawCapture.host_tsc`); a replayed
    dump keeps only what CPUID tells. AMD states TSC scaling in the SVM leaf
    (0x8000000A EDX bit 4, TscRateMsr); Intel in a VMX capability MSR the kernel
    prints as ``vmx flags: tsc_scaling``, which only a live probe reads.
    """
    host = None if capture.replayed else capture.host_tsc
    scaling: bool | None = None
    scaling_source = ""
    if "svm" in features:
        scaling, scaling_source = "tsc_scale" in features, "cpuid-svm"
    elif host is not None and host.scaling is not None:
        scaling, scaling_source = host.scaling, host.scaling_source
    if host is not None and host.khz:
        return Tsc(host.khz * 1000, host.source, scaling, scaling_source)
    if cpu_hz:
        return Tsc(cpu_hz, "cpuid", scaling, scaling_source)
    if host is not None:
        missing = host.missing or "the host kernel reported no TSC rate"
    elif capture.replayed:
        missing = "the dump does not state the TSC rate (CPUID leaf 0x15/0x16 or a hypervisor leaf)"
    else:
        missing = "CPUID does not state the TSC rate and the kernel's was not read"
    return Tsc(None, "", scaling, scaling_source, missing)


def capture_tsc(capture: RawCapture, cpu_hz: int | None, features: frozenset[str]) -> Tsc:
    """The TSC ``decode`` would state for ``capture`` given the CPUID rate and features it
    decoded before: the coordinator's check that an unchanged report's kernel TSC did
    not move, without decoding the leaves again."""
    return _tsc(capture, cpu_hz, features)


UNKNOWN = _Unknown()


def _leaf_missing(cpu: LogicalCpu, leaf: int, subleaf: int = 0) -> bool:
    """The CPU's own maximum says the leaf exists, but the capture does not hold it."""
    return _leaf_valid(cpu, leaf) and (leaf, subleaf) not in cpu.leaves


def _xsave_missing(cpu: LogicalCpu) -> bool:
    """Leaf 0xD is valid but the capture lacks subleaf 0 or 1 (the masks)."""
    return _leaf_valid(cpu, 0xD) and not {(0xD, 0), (0xD, 1)} <= cpu.leaves.keys()


def _amd_generation(family: int, model: int) -> str | None:
    if family != 0x1A:
        return None
    for low, high, name in AMD_1AH_GENERATIONS:
        if low <= model <= high:
            return name
    return None


def core_type_of(cpu: LogicalCpu, vendor: str) -> str | _Unknown | None:
    """The core type the processor reports for this CPU; None when it reports none.

    Only the processor's own report counts, and only where it says it mixes core
    types (Intel's hybrid flag, AMD's heterogeneous-cores flag), as Linux reads it.
    """
    if vendor == INTEL:
        if _leaf_missing(cpu, 0x7):
            return UNKNOWN
        if not _leaf_valid(cpu, 0x7) or not cpu.reg(0x7, 0, "edx") & HYBRID_BIT:
            return None
        if not _leaf_valid(cpu, 0x1A):
            return None
        regs = cpu.get(0x1A)
        if regs is None:
            return UNKNOWN
        code = regs[0] >> 24
        if code == 0:
            return None
        return INTEL_CORE_TYPES.get(code, f"intel-0x{code:02x}")
    if vendor in AMD_LIKE:
        if not _leaf_valid(cpu, 0x8000_0026):
            return None
        regs = cpu.get(0x8000_0026)
        if regs is None:
            return UNKNOWN
        if not regs[0] & HETEROGENEOUS_CORES_BIT:
            return None
        code = regs[1] >> 28
        leaf1 = cpu.get(1)
        generation = (
            None if leaf1 is None else _amd_generation(*family_model_stepping(leaf1[0])[:2])
        )
        if generation is not None and code in (0, 1):
            return generation if code == 0 else f"{generation}c"
        return AMD_CORE_TYPES.get(code, f"amd-{code}")
    return None


@cache
def _vendor_names(vendor: str) -> frozenset[str]:
    return frozenset(fb.name for fb in FEATURE_BITS if fb.applies_to(vendor))


@dataclass(frozen=True)
class CpuView:
    """What one logical CPU's leaves tell, with UNKNOWN where its capture lacks the leaf."""

    core_type: str | _Unknown | None
    fms: tuple[int, int, int] | _Unknown
    present: frozenset[str]
    absent: frozenset[str]
    xsave: Xsave | _Unknown
    address: AddressSizes | _Unknown


def view_of(cpu: LogicalCpu, vendor: str) -> CpuView:
    """Decode one logical CPU; features of leaves its capture lacks are neither present nor absent."""
    present = features_of(cpu, vendor)
    unknown = unknown_features_of(cpu, vendor)
    leaf1 = cpu.get(1)
    fms = UNKNOWN if leaf1 is None else family_model_stepping(leaf1[0])
    xsave: Xsave | _Unknown = UNKNOWN if _xsave_missing(cpu) else _xsave(cpu)
    address: AddressSizes | _Unknown = (
        UNKNOWN if _leaf_missing(cpu, 0x8000_0008) else _address_sizes(cpu, present)
    )
    return CpuView(
        core_type=core_type_of(cpu, vendor),
        fms=fms,
        present=present,
        absent=_vendor_names(vendor) - present - unknown,
        xsave=xsave,
        address=address,
    )


def _view_key(cpu: LogicalCpu) -> tuple[object, ...]:
    """The part of a CPU's leaves :func:`view_of` reads, so equal keys give equal views."""
    parts: list[object] = [cpu.xcr0]
    for key, regs in cpu.sorted_leaves():
        leaf = key[0]
        if key in _VIEW_LEAVES or leaf == 0xD:
            masked = tuple(r & _VIEW_MASKS.get((leaf, i), 0xFFFF_FFFF) for i, r in enumerate(regs))
            parts.append((key, masked))
        elif leaf in COUNTED_SUBLEAF_LEAVES:
            parts.append(key)  # only its presence counts (subleaves a dump may lack)
    return tuple(parts)


def _known_equal(a: object, b: object) -> bool:
    return a is UNKNOWN or b is UNKNOWN or a == b


def _known(a: Any, b: Any) -> Any:
    return b if a is UNKNOWN else a


@dataclass
class _TypeGroup:
    """Logical CPUs of one core type whose known features, XSAVE and addresses agree."""

    cpus: list[LogicalCpu]
    core_type: str | _Unknown | None
    fms: tuple[int, int, int] | _Unknown
    present: set[str]
    absent: set[str]
    xsave: Xsave | _Unknown
    address: AddressSizes | _Unknown

    @classmethod
    def start(cls, cpu: LogicalCpu, view: CpuView) -> _TypeGroup:
        return cls(
            [cpu],
            view.core_type,
            view.fms,
            set(view.present),
            set(view.absent),
            view.xsave,
            view.address,
        )

    def accepts(self, view: CpuView) -> bool:
        # Mode-dependent bits follow CR4 and how CPUID ran, not the core: they never split.
        conflicts = (self.present & view.absent) | (view.present & self.absent)
        return (
            _known_equal(self.core_type, view.core_type)
            and _known_equal(self.fms, view.fms)
            and _known_equal(self.xsave, view.xsave)
            and _known_equal(self.address, view.address)
            and not fingerprint_features(frozenset(conflicts))
        )

    def add(self, cpu: LogicalCpu, view: CpuView) -> None:
        self.cpus.append(cpu)
        self.core_type = _known(self.core_type, view.core_type)
        self.fms = _known(self.fms, view.fms)
        self.xsave = _known(self.xsave, view.xsave)
        self.address = _known(self.address, view.address)
        self.present |= view.present
        self.absent |= view.absent

    @property
    def features(self) -> frozenset[str]:
        """Features some member reports and none lacks (members are one core type)."""
        return frozenset(self.present - self.absent)


def _class_view_keys(split: SplitCpus) -> list[tuple[object, ...]]:
    """Per CPU of a split capture, a key that is equal only when :func:`_view_key` is:
    its class, XCR0 and the overrides that change what :func:`_view_key` reads of the
    class (an override changes a register, never which leaves are present)."""
    keys: list[tuple[object, ...]] = []
    for member in split.members:
        base = split.classes[member.cpu_class]
        seen = []
        for leaf, sub, reg, value in member.overrides:
            if (leaf, sub) in _VIEW_LEAVES or leaf == 0xD:
                mask = _VIEW_MASKS.get((leaf, reg), 0xFFFF_FFFF)
                if value & mask != base[(leaf, sub)][reg] & mask:
                    seen.append((leaf, sub, reg, value & mask))
        keys.append((member.cpu_class, member.xcr0, *sorted(seen)))
    return keys


def group_cpu_types(
    cpus: Sequence[LogicalCpu], vendor: str, keys: Sequence[tuple[object, ...]] | None = None
) -> list[_TypeGroup]:
    """Split logical CPUs into CPU types: by reported core type and by real differences.

    Caches, TLB descriptors, topology fields and leaves a dump lacks never split a
    type; a CPU missing a leaf joins the first type its known values agree with.
    ``keys`` (one per CPU, equal only where :func:`_view_key` is) spares reading every
    CPU's leaves when the capture's classes tell them (:func:`_class_view_keys`).
    """
    views: dict[tuple[object, ...], CpuView] = {}
    joined: dict[int, _TypeGroup] = {}  # id of a view -> the type a CPU with it joined
    groups: list[_TypeGroup] = []
    for n, cpu in enumerate(cpus):
        key = _view_key(cpu) if keys is None else keys[n]
        view = views.get(key)
        if view is None:
            view = views[key] = view_of(cpu, vendor)
        # A type that refused a view refuses it for good (what it knows only grows), and one
        # that took a view takes it again unchanged: the same view joins the same type.
        group = joined.get(id(view))
        if group is not None:
            group.cpus.append(cpu)
            continue
        for group in groups:
            if group.accepts(view):
                group.add(cpu, view)
                break
        else:
            group = _TypeGroup.start(cpu, view)
            groups.append(group)
        joined[id(view)] = group
    return sorted(groups, key=lambda g: min(c.index for c in g.cpus))


def migration_fingerprint(
    vendor: str,
    fms: tuple[int, int, int],
    features: Iterable[str],
    xsave: Xsave,
    address: AddressSizes,
    avx10_version: int | None = None,
) -> str:
    """sha256 over what decides where saved state may go; stable across runs and CPUs.

    The AVX10 version and a stated guest-physical width enter only when present,
    so fingerprints of processors without them stay what they were.
    """
    doc: dict[str, Any] = {
        "v": FINGERPRINT_VERSION,
        "vendor": vendor,
        "fms": list(fms),
        "features": sorted(features),
        # The user state a guest can get: the supported mask narrowed to XCR0 when it was read
        # (the kernel's choice counts: a host that does not enable AMX cannot restore AMX
        # state). A dump without XCR0 of a host whose OS enables everything it supports
        # fingerprints like the live host.
        "xsave": [
            xsave.supported_mask
            if xsave.enabled_mask is None
            else xsave.supported_mask & xsave.enabled_mask,
            xsave.supervisor_mask,
        ],
        "xsave_sizes": [[c.index, c.size, c.offset] for c in xsave.components],
        "address": [address.physical_bits, address.linear_bits]
        + ([address.guest_physical_bits] if address.guest_physical_bits else []),
    }
    if avx10_version is not None:
        doc["avx10"] = avx10_version
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def fingerprint_features(features: frozenset[str]) -> frozenset[str]:
    """Features that count for the fingerprint: mode-dependent bits differ by how CPUID ran."""
    return frozenset(f for f in features if FEATURE_CLASS.get(f) != FeatureClass.MODE_DEPENDENT)


FEATURE_CLASS: Mapping[str, FeatureClass] = {fb.name: fb.cls for fb in FEATURE_BITS}


def _holder(cpus: Sequence[LogicalCpu], leaf: int) -> LogicalCpu:
    """The first CPU whose capture holds ``leaf`` (the first CPU when none does)."""
    return next((c for c in cpus if (leaf, 0) in c.leaves), cpus[0])


OFFER_FINGERPRINT_VERSION = 1
# Leaves of an offer that describe the CPU that answered the ioctl, not what guests get:
# topology (0xB, 0x1F, 0x8000001E, 0x80000026), the Pentium III serial number (3) and
# Centaur/Zhaoxin's live readings (0xC0000004).
OFFER_PER_CPU_LEAVES = frozenset({0x3, 0xB, 0x1F, 0x8000001E, 0x80000026, 0xC0000004})
# (leaf, register index) -> mask of the bits to keep; the rest is the answering CPU's.
OFFER_PER_CPU_MASKS: Mapping[tuple[int, int], int] = {
    (0x1, 1): 0x00FF_FFFF,  # EBX[31:24]: initial APIC ID
    (0x6, 3): 0x0000_FFFF,  # EDX[31:16]: this CPU's row in the hardware feedback table
    (0x4, 0): 0x0000_3FFF,  # EAX[31:14]: logical CPUs sharing the cache, cores per package
    (0x8000001D, 0): 0x0000_3FFF,  # EAX[25:14]: logical CPUs sharing the cache
}
OFFER_MSRS_NOT_FINGERPRINTED = frozenset({0x8B})
"""IA32_UCODE_REV: the microcode revision (the profile's ``microcode``), read on whichever
CPU ran the ioctl; a microcode update is not by itself a change of what guests get."""


_RECENT_OFFERS = 64
_offer_fingerprints: dict[int, tuple[RawOffer, str]] = {}  # id -> (that very offer, its sha256)
_offer_lock = threading.Lock()


def offer_fingerprint(offer: RawOffer) -> str:
    """sha256 over the offer with per-CPU fields masked (KVM copies leaf 1 EBX's APIC ID,
    the cache-sharing counts, ... from whichever CPU answered the ioctl).

    Remembered for the last few offer objects (an offer is immutable): the coordinator
    hands every unchanged report of one offer the same object (`RecentOffers`)."""
    with _offer_lock:
        known = _offer_fingerprints.get(id(offer))
    if known is not None and known[0] is offer:
        return known[1]
    fingerprint = _offer_fingerprint(offer)
    with _offer_lock:
        while len(_offer_fingerprints) >= _RECENT_OFFERS:
            del _offer_fingerprints[next(iter(_offer_fingerprints))]
        _offer_fingerprints[id(offer)] = (offer, fingerprint)
    return fingerprint


def _offer_fingerprint(offer: RawOffer) -> str:
    leaves = []
    for (leaf, sub), regs in sorted(offer.leaves.items()):
        if leaf in OFFER_PER_CPU_LEAVES:
            continue
        masked = [r & OFFER_PER_CPU_MASKS.get((leaf, i), 0xFFFF_FFFF) for i, r in enumerate(regs)]
        leaves.append([leaf, sub, *masked])
    doc = {
        "v": OFFER_FINGERPRINT_VERSION,
        "kind": offer.kind,
        "api": offer.api_version,
        "leaves": leaves,
        "msrs": sorted(
            [i, v] for i, v in offer.msrs.items() if i not in OFFER_MSRS_NOT_FINGERPRINTED
        ),
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def decode_offer(offer: RawOffer, replayed: bool) -> HypervisorOffer:
    """The offer's leaves through the same feature table as raw CPUID."""
    cpu = offer.as_cpu()
    return HypervisorOffer(
        kind=offer.kind,
        api_version=offer.api_version,
        features=features_of(cpu, vendor_of(cpu)),
        msrs=tuple(sorted(offer.msrs.items())),
        fingerprint=offer_fingerprint(offer),
        replayed=replayed,
        leaves=offer.leaves,
    )


def _offer_of(capture: RawCapture) -> tuple[HypervisorOffer | None, str | None]:
    if capture.offer is not None:
        return decode_offer(capture.offer, capture.replayed), None
    if capture.offer_missing:
        return None, capture.offer_missing
    if capture.replayed:
        return None, "the dump records no hypervisor offer"
    return None, "the report carries no hypervisor offer"


def decode(capture: RawCapture) -> Profile:
    """Decode every logical CPU of a capture into one host profile."""
    if not capture.cpus:
        raise RawDataError("the capture holds no logical CPU")
    first = capture.cpus[0]
    vendor = vendor_of(first)
    classes = capture.split_form()
    split = None if classes is None else classes.sent
    _check_one_vendor(capture.cpus, vendor, split)

    cpu_types = []
    host_features: frozenset[str] | None = None
    unknown: set[str] = set()
    absent: set[str] = set()
    first_type: tuple[tuple[int, int, int], Xsave, AddressSizes] | None = None
    keys = None if split is None else _class_view_keys(split)
    for group in group_cpu_types(capture.cpus, vendor, keys):
        rep = group.cpus[0]
        feats = group.features
        host_features = feats if host_features is None else host_features & feats
        unknown |= _vendor_names(vendor) - group.present - group.absent
        absent |= group.absent
        type_fms = (0, 0, 0) if isinstance(group.fms, _Unknown) else group.fms
        type_xsave = _xsave(rep) if isinstance(group.xsave, _Unknown) else group.xsave
        type_address = (
            _address_sizes(rep, feats) if isinstance(group.address, _Unknown) else group.address
        )
        if any(c is first for c in group.cpus):
            first_type = (type_fms, type_xsave, type_address)
        cpu_types.append(
            CpuType(
                logical_cpus=tuple(sorted(c.index for c in group.cpus)),
                features=feats,
                family=type_fms[0],
                model=type_fms[1],
                stepping=type_fms[2],
                core_type=None if isinstance(group.core_type, _Unknown) else group.core_type,
                fingerprint=migration_fingerprint(
                    vendor,
                    type_fms,
                    fingerprint_features(feats),
                    type_xsave,
                    type_address,
                    _avx10_version(_holder(group.cpus, 0x24), feats),
                ),
            )
        )
    assert host_features is not None and first_type is not None
    fms, xsave, address = first_type
    hypervisor = _hypervisor(_holder(capture.cpus, 1))
    named = _holder(capture.cpus, 0x80000002)
    avx10 = _avx10_version(_holder(capture.cpus, 0x24), host_features)
    tsc_hz = _tsc_hz(_holder(capture.cpus, 0x15), hypervisor)
    offer, offer_missing = _offer_of(capture)
    brand = (
        _text(
            r
            for leaf in (0x80000002, 0x80000003, 0x80000004)
            for r in (named.get(leaf) or (0, 0, 0, 0))
        )
        if _leaf_valid(named, 0x80000004)
        else ""
    )
    return Profile(
        vendor=vendor,
        brand=" ".join(brand.split()),
        family=fms[0],
        model=fms[1],
        stepping=fms[2],
        x86_64_level=psabi_level(host_features, first.xcr0),
        features=host_features,
        unknown_features=frozenset(unknown - absent),
        cpu_types=tuple(cpu_types),
        xsave=xsave,
        address_sizes=address,
        hypervisor=hypervisor,
        invariant_tsc=_invariant_tsc(_holder(capture.cpus, 0x80000007)),
        tsc_hz=tsc_hz,
        tsc=_tsc(capture, tsc_hz, host_features),
        avx10_version=avx10,
        microcode=capture.microcode,
        source=capture.source,
        fingerprint=migration_fingerprint(
            vendor, fms, fingerprint_features(host_features), xsave, address, avx10
        ),
        raw=capture,
        hypervisor_offer=offer,
        hypervisor_offer_missing=offer_missing,
    )


def _check_one_vendor(cpus: Sequence[LogicalCpu], vendor: str, split: SplitCpus | None) -> None:
    """Every CPU reports ``vendor``; read once per class where ``split`` tells the classes
    (leaf 0 is the class's unless the CPU overrides it)."""
    by_class: dict[int, str] = {}
    for n, cpu in enumerate(cpus):
        member = None if split is None else split.members[n]
        if member is None or any(leaf == 0 and sub == 0 for leaf, sub, _, _ in member.overrides):
            own = vendor_of(cpu)
        else:
            known = by_class.get(member.cpu_class)
            own = by_class[member.cpu_class] = vendor_of(cpu) if known is None else known
        if own != vendor:
            raise RawDataError(
                f"logical CPUs {cpus[0].index} and {cpu.index} report different vendors"
            )


def _invariant_tsc(cpu: LogicalCpu) -> bool:
    if not _leaf_valid(cpu, 0x80000007):
        return False
    return bool((cpu.get(0x80000007) or (0, 0, 0, 0))[3] >> 8 & 1)
