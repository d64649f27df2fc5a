"""Raw CPUID data as read from a processor or a dump, before any decoding.

Every source (the live instruction, /dev/cpu, the dump formats, the wire)
produces a :class:`RawCapture`, and the one decoder consumes it; so a
replayed dump and a live probe are decoded by exactly the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from .cpu_classes import CpuClasses

Regs = tuple[int, int, int, int]
"""The four registers one CPUID call returns: (eax, ebx, ecx, edx)."""

REG_INDEX = {"eax": 0, "ebx": 1, "ecx": 2, "edx": 3}

LeafKey = tuple[int, int]
"""(leaf, subleaf); leaves without subleaves use subleaf 0."""

SOURCE_INSTRUCTION = "cpuid-instruction"
SOURCE_DEVCPU = "devcpu"
REPLAY_PREFIX = "replay:"

STANDARD_BASE = 0x0000_0000
HYPERVISOR_BASE = 0x4000_0000
EXTENDED_BASE = 0x8000_0000
CENTAUR_BASE = 0xC000_0000
RANGE_SPAN = 0x1000_0000
"""Each CPUID range starts at a base and reports its own maximum leaf there."""

VENDOR_RANGES = (STANDARD_BASE, HYPERVISOR_BASE, EXTENDED_BASE, CENTAUR_BASE)


class RawDataError(InputError):
    """Raw leaves that cannot come from a real processor."""


def vendor_string(leaf0: Regs) -> str:
    """The 12-character vendor string leaf 0 returns in EBX, EDX, ECX (in that order).

    Latin-1 keeps every byte as one character, so a damaged string still has 12
    characters the validators can show; the one place the register order lives.
    """
    return b"".join(r.to_bytes(4, "little") for r in (leaf0[1], leaf0[3], leaf0[2])).decode(
        "latin-1"
    )


@dataclass(frozen=True)
class LogicalCpu:
    """The CPUID leaves one logical CPU returned, plus XCR0 when it was read live."""

    index: int
    leaves: Mapping[LeafKey, Regs]
    xcr0: int | None = None

    def get(self, leaf: int, subleaf: int = 0) -> Regs | None:
        return self.leaves.get((leaf, subleaf))

    def reg(self, leaf: int, subleaf: int, name: str) -> int:
        """One register of one leaf, 0 when the leaf was not read (absent means unsupported)."""
        regs = self.leaves.get((leaf, subleaf))
        return 0 if regs is None else regs[REG_INDEX[name]]

    def max_leaf(self, base: int) -> int | None:
        """The maximum leaf the range starting at ``base`` reports, or None when absent."""
        regs = self.leaves.get((base, 0))
        if regs is None:
            return None
        top = regs[0]
        if base == STANDARD_BASE:
            return top
        if base <= top < base + RANGE_SPAN:
            return top
        return None

    def sorted_leaves(self) -> list[tuple[LeafKey, Regs]]:
        return sorted(self.leaves.items())


HOST_TSC_SOURCES = frozenset({"", "kvm", "sysfs"})
SCALING_SOURCES = frozenset({"", "vmx-flags"})
MAX_TSC_KHZ = 100_000_000
"""100 GHz: far beyond any TSC; a larger report is refused as corrupt."""


@dataclass(frozen=True)
class HostTsc:
    """The host's TSC rate and TSC scaling as its kernel reports them (live probes only).

    Not CPUID: ``khz`` is the rate Linux calibrated and KVM gives a new vCPU
    (``source`` "kvm", or "sysfs" for a kernel that exports ``tsc_freq_khz``);
    ``scaling`` is Intel's VMX TSC scaling from the kernel's ``vmx flags``
    (None when the kernel prints none). A replayed dump never carries one.
    """

    khz: int | None
    source: str = ""
    scaling: bool | None = None
    scaling_source: str = ""
    missing: str = ""
    """Why ``khz`` is None (no /dev/kvm, permission denied, ...); empty otherwise."""


KIND_KVM = "kvm"
OFFER_KINDS = frozenset({KIND_KVM})


@dataclass(frozen=True)
class RawOffer:
    """What the host's hypervisor says it can give a guest, as it said it.

    For KVM: the ``KVM_GET_SUPPORTED_CPUID`` entries keyed like CPUID leaves,
    and the feature MSRs (index -> value) ``KVM_GET_MSRS`` returns on /dev/kvm.
    """

    kind: str
    api_version: int
    leaves: Mapping[LeafKey, Regs]
    msrs: Mapping[int, int] = field(default_factory=dict)

    def as_cpu(self) -> LogicalCpu:
        """The offer as one logical CPU, so the one decoder reads it."""
        return LogicalCpu(index=0, leaves=self.leaves, xcr0=None)


@dataclass(frozen=True)
class RawCapture:
    """Everything read from one host's processors (or one dump file)."""

    cpus: tuple[LogicalCpu, ...]
    source: str
    microcode: str | None = None
    origin: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    host_tsc: HostTsc | None = None
    """The kernel's TSC rate and scaling, read beside the leaves by a live probe."""
    warnings: tuple[str, ...] = ()
    """What an importer skipped or could not tell (say an empty CPU section of a dump)."""
    offer: RawOffer | None = None
    """The hypervisor's offer read beside the CPUID leaves (live, or recorded in a dump)."""
    offer_missing: str | None = None
    """Why there is no offer, when the reader knows (no /dev/kvm, permission denied...)."""
    classes: CpuClasses | None = field(default=None, compare=False, repr=False)
    """The compact form ``cpus`` arrived in (a report, a stored version), so validation,
    storage and decoding take each class of CPUs once; read it through :meth:`split_form`."""

    @property
    def replayed(self) -> bool:
        return self.source.startswith(REPLAY_PREFIX)

    def split_form(self) -> CpuClasses | None:
        """The compact form of exactly these ``cpus``; None when there is none, or when the
        capture was copied with other CPUs (``replace(capture, cpus=...)``)."""
        classes = self.classes
        return classes if classes is not None and classes.cpus is self.cpus else None


def leaf_in_reported_range(cpu_leaves: Mapping[LeafKey, Regs], leaf: int) -> bool:
    """True when ``leaf`` lies at or below the maximum its range reports.

    Processors answer leaves above the maximum with the data of the highest
    standard leaf (Intel) or zeros (AMD); dumps such as libcpuid's record
    those anyway, so importers drop them before decoding.
    """
    base = leaf & 0xF000_0000
    if base not in VENDOR_RANGES:
        return False
    head = cpu_leaves.get((base, 0))
    if head is None:
        return False
    if leaf == base:
        return True
    top = head[0]
    if base == STANDARD_BASE:
        return leaf <= top
    return base < top < base + RANGE_SPAN and leaf <= top


def trim_to_reported_ranges(leaves: Mapping[LeafKey, Regs]) -> dict[LeafKey, Regs]:
    """Keep only the leaves that lie inside the ranges the processor reports."""
    return {k: v for k, v in leaves.items() if leaf_in_reported_range(leaves, k[0])}


def check_regs(values: Iterable[int]) -> Regs:
    regs = tuple(values)
    if len(regs) != 4 or any(not 0 <= r <= 0xFFFF_FFFF for r in regs):
        raise RawDataError(f"a CPUID result is four 32-bit registers, got {regs!r}")
    return regs  # type: ignore[return-value]


MAX_LOGICAL_CPUS = 8192
MAX_LEAVES_PER_CPU = 2048
MAX_SUBLEAF = 0xFF
MAX_LEAVES_IN_RANGE = 0x100


def validate_capture(capture: RawCapture) -> None:
    """Refuse raw leaves that cannot come from a processor (a spoofed or corrupt report).

    A capture in its compact form is checked class by class: each class's leaves once,
    then per CPU only its number and, where an override could change the outcome (leaf 0),
    its own leaves; the first error is the one the CPU-by-CPU walk would raise.
    """
    if not capture.cpus:
        raise RawDataError("the report holds no logical CPU")
    if len(capture.cpus) > MAX_LOGICAL_CPUS:
        raise RawDataError(f"{len(capture.cpus)} logical CPUs is more than {MAX_LOGICAL_CPUS}")
    seen: set[int] = set()
    checked: set[tuple[LeafKey, Regs]] = set()  # CPUs of one class share most leaves
    split = capture.split_form()
    if split is None:
        for cpu in capture.cpus:
            _check_cpu(cpu, seen, checked)
    else:
        _check_classes(split, seen, checked)
    if capture.host_tsc is not None:
        validate_host_tsc(capture.host_tsc)
    if capture.offer is not None:
        validate_offer(capture.offer)


def _check_cpu(cpu: LogicalCpu, seen: set[int], checked: set[tuple[LeafKey, Regs]]) -> None:
    if cpu.index in seen:
        raise RawDataError(f"logical CPU {cpu.index} appears twice")
    seen.add(cpu.index)
    _check_leaves(f"logical CPU {cpu.index}", cpu.leaves, checked)


def _check_leaves(
    where: str, leaves: Mapping[LeafKey, Regs], checked: set[tuple[LeafKey, Regs]]
) -> None:
    """One CPU's leaves; ``checked`` holds the (key, registers) pairs already found good."""
    if len(leaves) > MAX_LEAVES_PER_CPU:
        raise RawDataError(f"{where}: {len(leaves)} leaves is beyond any processor")
    head = leaves.get((0, 0))
    if head is None:
        raise RawDataError(f"{where}: leaf 0 (vendor string) is missing")
    vendor = vendor_string(head).encode("latin-1")
    if len(vendor.rstrip(b"\0")) != 12 or not all(0x20 <= b < 0x7F for b in vendor):
        raise RawDataError(f"{where}: vendor string {vendor!r} is not 12 printable characters")
    for item in leaves.items():
        if item in checked:
            continue
        (leaf, sub), regs = item
        base = leaf & 0xF000_0000
        if base not in VENDOR_RANGES and leaf not in (0x2000_0000, 0x8086_0000):
            raise RawDataError(f"{where}: leaf 0x{leaf:08x} is outside the CPUID ranges")
        span = 0x1000 if base == HYPERVISOR_BASE else MAX_LEAVES_IN_RANGE
        if leaf - base >= span and leaf != 0x8FFF_FFFF:
            raise RawDataError(
                f"{where}: leaf 0x{leaf:08x} is beyond the architectural range "
                f"0x{base:08x}..0x{base + span - 1:08x}"
            )
        if sub > MAX_SUBLEAF:
            raise RawDataError(f"{where}: leaf 0x{leaf:08x} subleaf {sub} is beyond any processor")
        check_regs(regs)
        checked.add(item)
    if head[0] >= MAX_LEAVES_IN_RANGE:
        raise RawDataError(f"{where}: leaf 0 claims 0x{head[0]:x} standard leaves")


def _check_classes(split: CpuClasses, seen: set[int], checked: set[tuple[LeafKey, Regs]]) -> None:
    """The compact form's CPUs, in order, with each class's leaves checked once.

    A CPU whose class passes passes too unless an override touches leaf 0: the others
    keep the class's keys and replace a register by a 32-bit value (`expand_cpus`
    refused any other), which no check here can refuse. Any other CPU is checked whole,
    so it fails with the message it always had.
    """
    good: list[bool] = []
    for leaves in split.sent.classes:
        try:
            _check_leaves("", leaves, checked)
        except RawDataError:
            good.append(False)
        else:
            good.append(True)
    for cpu, member in zip(split.cpus, split.sent.members, strict=True):
        if (
            good[member.cpu_class]
            and cpu.index not in seen
            and not any(leaf == 0 and sub == 0 for leaf, sub, _, _ in member.overrides)
        ):
            seen.add(cpu.index)
            continue
        _check_cpu(cpu, seen, checked)


def validate_host_tsc(tsc: HostTsc) -> None:
    """Refuse a TSC report no kernel could have made."""
    if tsc.khz is not None and not 0 < tsc.khz <= MAX_TSC_KHZ:
        raise RawDataError(f"host TSC rate {tsc.khz} kHz is out of range (1..{MAX_TSC_KHZ})")
    if tsc.source not in HOST_TSC_SOURCES or (tsc.khz is None) != (tsc.source == ""):
        raise RawDataError(
            f"host TSC source {tsc.source!r} is unknown or does not match the rate; "
            "expected 'kvm' or 'sysfs' with a rate, '' without"
        )
    if tsc.scaling_source not in SCALING_SOURCES or (tsc.scaling is None) != (
        tsc.scaling_source == ""
    ):
        raise RawDataError(f"host TSC scaling source {tsc.scaling_source!r} is unknown")
    if len(tsc.missing) > 512:
        raise RawDataError("host TSC: the missing-rate reason is longer than 512 characters")


MAX_OFFER_MSRS = 1024


def validate_offer(offer: RawOffer) -> None:
    """Refuse an offer no hypervisor could have made (a spoofed or corrupt report)."""
    if offer.kind not in OFFER_KINDS:
        raise RawDataError(
            f"hypervisor offer kind {offer.kind!r} is unknown; expected one of "
            + ", ".join(sorted(OFFER_KINDS))
        )
    if not 0 <= offer.api_version <= 0xFFFF_FFFF:
        raise RawDataError(f"hypervisor offer API version {offer.api_version} is out of range")
    if (0, 0) not in offer.leaves:
        raise RawDataError("hypervisor offer: leaf 0 (vendor string) is missing")
    if len(offer.leaves) > MAX_LEAVES_PER_CPU:
        raise RawDataError(f"hypervisor offer: {len(offer.leaves)} leaves is beyond any hypervisor")
    for (leaf, sub), regs in offer.leaves.items():
        if not 0 <= leaf <= 0xFFFF_FFFF or not 0 <= sub <= MAX_SUBLEAF:
            raise RawDataError(f"hypervisor offer: leaf 0x{leaf:x} subleaf {sub} is out of range")
        check_regs(regs)
    if len(offer.msrs) > MAX_OFFER_MSRS:
        raise RawDataError(f"hypervisor offer: {len(offer.msrs)} MSRs is beyond any hypervisor")
    for index, value in offer.msrs.items():
        if not 0 <= index <= 0xFFFF_FFFF or not 0 <= value < 2**64:
            raise RawDataError(f"hypervisor offer: MSR 0x{index:x} = {value} is out of range")
