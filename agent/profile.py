"""The processor profile: what the decoder makes of raw CPUID leaves.

Plain dataclasses with no wire types, so the agent's CLI, the coordinator's
domain code and the protobuf conversion all share one shape. `to_json`
defines the `probe --json` keys that outside checks read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .raw import LeafKey, RawCapture, Regs
from .rawjson import capture_to_json


@dataclass(frozen=True)
class XsaveComponent:
    index: int
    name: str
    size: int
    offset: int
    supervisor: bool = False


@dataclass(frozen=True)
class Xsave:
    """XSAVE state: what the processor supports and what the OS enabled in XCR0."""

    supported_mask: int = 0
    supervisor_mask: int = 0
    enabled_mask: int | None = None
    max_size: int = 0
    components: tuple[XsaveComponent, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            # Integers, so scripts can test bits directly (x87=bit 0, SSE=1, AVX=2, ...).
            "supported_mask": self.supported_mask,
            "supervisor_mask": self.supervisor_mask,
            "enabled_mask": self.enabled_mask,
            "max_size": self.max_size,
            "components": [
                {
                    "index": c.index,
                    "name": c.name,
                    "size": c.size,
                    "offset": c.offset,
                    "supervisor": c.supervisor,
                }
                for c in self.components
            ],
        }


@dataclass(frozen=True)
class AddressSizes:
    physical_bits: int
    linear_bits: int
    guest_physical_bits: int | None = None
    """0x80000008 EAX[23:16] where set (KVM and QEMU's ``guest-phys-bits`` state it);
    None means the guest-physical width is the physical one."""


@dataclass(frozen=True)
class Tsc:
    """The TSC a guest of this host gets: the rate and whether the host can scale it.

    ``source`` says where the rate came from: "kvm" or "sysfs" (the host
    kernel, live probes only), "cpuid" (leaf 0x15/0x16 or a hypervisor leaf:
    what a dump can tell), "" (unknown, ``missing`` says why). ``scaling`` is
    None when nobody reported it.
    """

    hz: int | None = None
    source: str = ""
    scaling: bool | None = None
    scaling_source: str = ""
    missing: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "hz": self.hz,
            "source": self.source or None,
            "scaling": self.scaling,
            "scaling_source": self.scaling_source or None,
            "missing": self.missing or None,
        }


@dataclass(frozen=True)
class CpuType:
    """Logical CPUs of one core type that agree on everything that decides a restore.

    ``core_type`` names the type where the processor reports one (``performance``,
    ``efficiency``; ``zen5``, ``zen5c`` on AMD family 1Ah), else None. Caches, TLB
    descriptors, topology fields and leaves missing from a dump never split a type.
    """

    logical_cpus: tuple[int, ...]
    features: frozenset[str]
    family: int
    model: int
    stepping: int
    core_type: str | None
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "logical_cpus": list(self.logical_cpus),
            "core_type": self.core_type,
            "family": self.family,
            "model": self.model,
            "stepping": self.stepping,
            "features": sorted(self.features),
            "fingerprint": self.fingerprint,
        }


FEATURE_MSR_NAMES: Mapping[int, str] = {
    0x08B: "IA32_UCODE_REV",
    0x0CE: "MSR_PLATFORM_INFO",
    0x10A: "IA32_ARCH_CAPABILITIES",
    0x345: "IA32_PERF_CAPABILITIES",
    **{
        0x480 + n: name
        for n, name in enumerate(
            (
                "IA32_VMX_BASIC",
                "IA32_VMX_PINBASED_CTLS",
                "IA32_VMX_PROCBASED_CTLS",
                "IA32_VMX_EXIT_CTLS",
                "IA32_VMX_ENTRY_CTLS",
                "IA32_VMX_MISC",
                "IA32_VMX_CR0_FIXED0",
                "IA32_VMX_CR0_FIXED1",
                "IA32_VMX_CR4_FIXED0",
                "IA32_VMX_CR4_FIXED1",
                "IA32_VMX_VMCS_ENUM",
                "IA32_VMX_PROCBASED_CTLS2",
                "IA32_VMX_EPT_VPID_CAP",
                "IA32_VMX_TRUE_PINBASED_CTLS",
                "IA32_VMX_TRUE_PROCBASED_CTLS",
                "IA32_VMX_TRUE_EXIT_CTLS",
                "IA32_VMX_TRUE_ENTRY_CTLS",
                "IA32_VMX_VMFUNC",
            )
        )
    },
    0x492: "IA32_VMX_PROCBASED_CTLS3",
    0xC0011029: "MSR_AMD64_DE_CFG",
}
"""Names of the feature MSRs KVM reports (Intel SDM vol. 4; Linux msr-index.h), for display."""


@dataclass(frozen=True)
class HypervisorOffer:
    """What the host's hypervisor offers a guest, decoded like raw CPUID.

    ``features`` come from the offer's own leaves through the same feature
    table, so they use the project's names and compare directly with a
    profile's ``features``.
    """

    kind: str
    api_version: int
    features: frozenset[str]
    msrs: tuple[tuple[int, int], ...]
    fingerprint: str
    replayed: bool
    leaves: Mapping[LeafKey, Regs] = field(repr=False, compare=False)

    def msr(self, index: int) -> int | None:
        return dict(self.msrs).get(index)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "api_version": self.api_version,
            "features": sorted(self.features),
            "msrs": [
                {
                    "index": f"0x{index:x}",
                    "name": FEATURE_MSR_NAMES.get(index),
                    "value": f"0x{value:x}",
                }
                for index, value in self.msrs
            ],
            "leaves": [
                [f"0x{leaf:08x}", f"0x{sub:02x}", *(f"0x{r:08x}" for r in regs)]
                for (leaf, sub), regs in sorted(self.leaves.items())
            ],
            "replayed": self.replayed,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class Profile:
    """One host's (or one dump's) processor, decoded."""

    vendor: str
    brand: str
    family: int
    model: int
    stepping: int
    x86_64_level: str | None
    features: frozenset[str]
    cpu_types: tuple[CpuType, ...]
    xsave: Xsave
    address_sizes: AddressSizes
    hypervisor: str | None
    invariant_tsc: bool
    tsc_hz: int | None
    microcode: str | None
    source: str
    fingerprint: str
    raw: RawCapture = field(repr=False, compare=False)
    unknown_features: frozenset[str] = frozenset()
    """Features the capture cannot tell (their leaf is missing from a dump)."""
    tsc: Tsc = Tsc()
    """The TSC a guest gets here (the kernel's rate on a live host; CPUID's on a dump)."""
    avx10_version: int | None = None
    """CPUID 0x24 EBX[7:0] on a processor with AVX10; None without it (or without leaf 0x24)."""
    hypervisor_offer: HypervisorOffer | None = None
    """What the host's hypervisor offers a guest (KVM), where it was read or recorded."""
    hypervisor_offer_missing: str | None = None
    """Why ``hypervisor_offer`` is None (no /dev/kvm, permission denied, a dump without one)."""

    @property
    def replayed(self) -> bool:
        return self.raw.replayed

    @property
    def report_fingerprint(self) -> str:
        """What an agent compares to know a report is due: the processor's fingerprint,
        combined with the hypervisor offer's when there is one (a kernel update can
        change the offer and nothing else)."""
        if self.hypervisor_offer is None:
            return self.fingerprint
        both = f"{self.fingerprint}:{self.hypervisor_offer.fingerprint}".encode()
        return hashlib.sha256(both).hexdigest()

    @property
    def logical_cpu_count(self) -> int:
        return len(self.raw.cpus)

    def to_json(self, include_raw: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "vendor": self.vendor,
            "brand": self.brand,
            "family": self.family,
            "model": self.model,
            "stepping": self.stepping,
            "x86_64_level": self.x86_64_level,
            "features": sorted(self.features),
            "unknown_features": sorted(self.unknown_features),
            "cpu_types": [t.to_json() for t in self.cpu_types],
            "xsave": self.xsave.to_json(),
            "address_sizes": {
                "physical_bits": self.address_sizes.physical_bits,
                "linear_bits": self.address_sizes.linear_bits,
                "guest_physical_bits": self.address_sizes.guest_physical_bits,
            },
            "hypervisor": self.hypervisor,
            "invariant_tsc": self.invariant_tsc,
            "tsc_hz": self.tsc_hz,
            "tsc": self.tsc.to_json(),
            "avx10_version": self.avx10_version,
            "microcode": self.microcode,
            "source": self.source,
            "replayed": self.replayed,
            "origin": self.raw.origin,
            "logical_cpus": self.logical_cpu_count,
            "fingerprint": self.fingerprint,
            "warnings": list(self.raw.warnings),
            "hypervisor_offer": (
                None if self.hypervisor_offer is None else self.hypervisor_offer.to_json()
            ),
            "hypervisor_offer_missing": self.hypervisor_offer_missing,
        }
        if include_raw:
            doc["raw"] = capture_to_json(self.raw)
        return doc
