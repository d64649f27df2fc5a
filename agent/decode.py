"""The one decoder: raw CPUID leaves -> :class:`Profile`.

Live probes, replayed dumps and the coordinator's re-decoding of reports
all come through :func:`decode`, so a newer feature table changes every
view at once and never needs a newer agent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .feature_table import FEATURE_BITS, FeatureBit, FeatureClass
from .profile import AddressSizes, CpuType, HypervisorOffer, Profile, Xsave, XsaveComponent
from .raw import REG_INDEX, LogicalCpu, RawCapture, RawDataError, RawOffer, Regs

FINGERPRINT_VERSION = 1

# Leaves that describe where a logical CPU sits or what it reads right now, not what it
# can do: topology (0xB, 0x1F, 0x8000001E, 0x80000026), the Pentium III serial number (3)
# and Centaur/Zhaoxin's live temperature and frequency readings (0xC0000004).
PER_CPU_LEAVES = frozenset({0x3, 0xB, 0x1F, 0x8000001E, 0x80000026, 0xC0000004})
# (leaf, register index) -> mask of the bits to keep; the rest is per-CPU.
PER_CPU_MASKS: Mapping[tuple[int, int], int] = {
    (0x1, 1): 0x00FF_FFFF,  # EBX[31:24]: initial APIC ID
    (0x6, 3): 0x0000_FFFF,  # EDX[31:16]: this CPU's row in the hardware feedback table
    (0x4, 0): 0x0000_3FFF,  # EAX[31:14]: logical CPUs sharing the cache, cores per package
    (0x8000001D, 0): 0x0000_3FFF,  # EAX[25:14]: logical CPUs sharing the cache
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

CORE_TYPES = {0x10: "reserved", 0x20: "intel-atom", 0x40: "intel-core"}

HYPERVISOR_BIT = 1 << 31


def _text(regs: Iterable[int]) -> str:
    raw = b"".join(r.to_bytes(4, "little") for r in regs)
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def vendor_of(cpu: LogicalCpu) -> str:
    head = cpu.get(0)
    if head is None:
        raise RawDataError(f"logical CPU {cpu.index} has no leaf 0 (vendor string)")
    return b"".join(r.to_bytes(4, "little") for r in (head[1], head[3], head[2])).decode("latin-1")


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
        return AddressSizes(physical_bits=regs[0] & 0xFF, linear_bits=regs[0] >> 8 & 0xFF)
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


def _core_type(cpu: LogicalCpu) -> str | None:
    if not _leaf_valid(cpu, 0x1A):
        return None
    eax = (cpu.get(0x1A) or (0, 0, 0, 0))[0]
    code = eax >> 24
    if code == 0:
        return None
    return CORE_TYPES.get(code, f"0x{code:02x}")


def type_key(cpu: LogicalCpu) -> bytes:
    """The CPU's leaves with per-CPU fields (APIC IDs, topology, cache sharing) masked."""
    parts = []
    for (leaf, sub), regs in cpu.sorted_leaves():
        if leaf in PER_CPU_LEAVES or leaf & 0xF000_0000 == 0x4000_0000:
            continue  # hypervisor leaves describe the VM (Xen puts the vCPU id there)
        masked = [r & PER_CPU_MASKS.get((leaf, i), 0xFFFF_FFFF) for i, r in enumerate(regs)]
        parts.append(f"{leaf:x}.{sub:x}:{masked[0]:x},{masked[1]:x},{masked[2]:x},{masked[3]:x}")
    return ";".join(parts).encode()


def migration_fingerprint(
    vendor: str,
    fms: tuple[int, int, int],
    features: Iterable[str],
    xsave: Xsave,
    address: AddressSizes,
) -> str:
    """sha256 over what decides where saved state may go; stable across runs and CPUs."""
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
        "address": [address.physical_bits, address.linear_bits],
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def fingerprint_features(features: frozenset[str]) -> frozenset[str]:
    """Features that count for the fingerprint: mode-dependent bits differ by how CPUID ran."""
    return frozenset(f for f in features if FEATURE_CLASS.get(f) != FeatureClass.MODE_DEPENDENT)


FEATURE_CLASS: Mapping[str, FeatureClass] = {fb.name: fb.cls for fb in FEATURE_BITS}


def _group_cpus(cpus: Iterable[LogicalCpu]) -> list[list[LogicalCpu]]:
    groups: dict[bytes, list[LogicalCpu]] = {}
    for cpu in cpus:
        groups.setdefault(type_key(cpu), []).append(cpu)
    return sorted(groups.values(), key=lambda g: g[0].index)


OFFER_FINGERPRINT_VERSION = 1
OFFER_MSRS_NOT_FINGERPRINTED = frozenset({0x8B})
"""IA32_UCODE_REV: the microcode revision (the profile's ``microcode``), read on whichever
CPU ran the ioctl; a microcode update is not by itself a change of what guests get."""


def offer_fingerprint(offer: RawOffer) -> str:
    """sha256 over the offer with per-CPU fields masked (KVM copies leaf 1 EBX's APIC ID,
    the cache-sharing counts, ... from whichever CPU answered the ioctl)."""
    leaves = []
    for (leaf, sub), regs in sorted(offer.leaves.items()):
        if leaf in PER_CPU_LEAVES:
            continue
        masked = [r & PER_CPU_MASKS.get((leaf, i), 0xFFFF_FFFF) for i, r in enumerate(regs)]
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
    leaf1: Regs = first.get(1) or (0, 0, 0, 0)
    fms = family_model_stepping(leaf1[0])

    cpu_types = []
    host_features: frozenset[str] | None = None
    unknown: frozenset[str] = frozenset()
    for group in _group_cpus(capture.cpus):
        rep = group[0]
        if vendor_of(rep) != vendor:
            raise RawDataError(
                f"logical CPUs {first.index} and {rep.index} report different vendors"
            )
        feats = features_of(rep, vendor)
        host_features = feats if host_features is None else host_features & feats
        unknown |= unknown_features_of(rep, vendor)
        rep_fms = family_model_stepping((rep.get(1) or (0, 0, 0, 0))[0])
        cpu_types.append(
            CpuType(
                logical_cpus=tuple(c.index for c in group),
                features=feats,
                family=rep_fms[0],
                model=rep_fms[1],
                stepping=rep_fms[2],
                core_type=_core_type(rep),
                fingerprint=migration_fingerprint(
                    vendor,
                    rep_fms,
                    fingerprint_features(feats),
                    _xsave(rep),
                    _address_sizes(rep, feats),
                ),
            )
        )
    assert host_features is not None
    xsave = _xsave(first)
    address = _address_sizes(first, host_features)
    hypervisor = _hypervisor(first)
    offer, offer_missing = _offer_of(capture)
    brand = (
        _text(
            r
            for leaf in (0x80000002, 0x80000003, 0x80000004)
            for r in (first.get(leaf) or (0, 0, 0, 0))
        )
        if _leaf_valid(first, 0x80000004)
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
        unknown_features=unknown,
        cpu_types=tuple(cpu_types),
        xsave=xsave,
        address_sizes=address,
        hypervisor=hypervisor,
        invariant_tsc=_invariant_tsc(first),
        tsc_hz=_tsc_hz(first, hypervisor),
        microcode=capture.microcode,
        source=capture.source,
        fingerprint=migration_fingerprint(
            vendor, fms, fingerprint_features(host_features), xsave, address
        ),
        raw=capture,
        hypervisor_offer=offer,
        hypervisor_offer_missing=offer_missing,
    )


def _invariant_tsc(cpu: LogicalCpu) -> bool:
    if not _leaf_valid(cpu, 0x80000007):
        return False
    return bool((cpu.get(0x80000007) or (0, 0, 0, 0))[3] >> 8 & 1)
