"""What each dump format records of a processor, and the check that a dump holds all of it.

A dump cut short (a partial download, a truncated paste) must be refused, never
decoded into a smaller processor: the leaves after the cut would read as zeros,
and a Zen 4 cut in the middle of its 17th CPU would lose long mode. Every
logical CPU must hold every leaf its own leaf 0 and leaf 0x80000000 declare,
except where a format is known to leave leaves out:

* the enumerated leaves (4, 0xB, 0x1B, 0x1F, 0x8000001D, 0x80000026) list
  subleaves until a terminating one, and AIDA64 / InstLatx64 print nothing
  when subleaf 0 already terminates (leaf 4 on AMD and VIA, 0xB on Zen 1, 0x1B
  on Gracemont in the shared dumps). Any format may lack them (a capture
  replayed from AIDA64 and written again as ``cpuid -r`` or JSON does): their
  bits stay *unknown* for the decoder, and they hold no feature bit but
  0x80000026's, so a file cut just before one of them decodes no smaller;
* libcpuid records fixed arrays (leaves 0-0x1F, 0x80000000-0x8000001F):
  leaves above them stay *unknown* for the decoder, they are not missing;
* otherwise ``cpuid -r``, AIDA64 and the project's own JSON record every
  leaf of both ranges.

A CPU without the extended range is cut short when another CPU of the file
has it, or when the processor must have it (AMD, Hygon, Centaur and Zhaoxin
parts, and every part with SSE2: Intel added the range with the Pentium 4).
The same holds for VIA/Zhaoxin's 0xC0000000 range (PadLock features), which
every Centaur or Zhaoxin part with SSE2 reports (VIA C7 and later); libcpuid
does not record that range.

Whole CPUs missing at the end of a file cannot be told from a smaller machine
by the leaves alone, and on a processor whose cores are all alike they change
nothing the decoder reports. On a hybrid processor (Intel CPUID.7.0:EDX[15],
AMD CPUID.0x80000026:EAX[30]) they can: the missing CPUs may be the other
core type, and the host would look bigger than it is. AIDA64 and ``cpuid -r``
(without ``-1``) list every logical CPU the OS runs, so a hybrid dump listing
fewer logical CPUs than its topology leaf says one package holds (0x1F or
0xB, else AMD's 0x80000008 ECX[7:0]) is refused as cut at a CPU boundary.
libcpuid records one CPU unless asked for more, and the project's JSON may
come from a probe limited by CPU affinity, so those formats are not held to
the count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..raw import CENTAUR_BASE, EXTENDED_BASE, STANDARD_BASE, LeafKey, Regs, vendor_string
from .errors import DumpError

SSE2 = 1 << 26  # CPUID.1:EDX[26]
INTEL_HYBRID = 1 << 15  # CPUID.7.0:EDX[15] (Linux: X86_FEATURE_HYBRID_CPU)
AMD_HETEROGENEOUS = 1 << 30  # CPUID.0x80000026:EAX[30] (X86_FEATURE_AMD_HETEROGENEOUS_CORES)
CENTAUR_VENDORS = frozenset({"CentaurHauls", "  Shanghai  "})
EXTENDED_RANGE_VENDORS = frozenset({"AuthenticAMD", "HygonGenuine", *CENTAUR_VENDORS})
"""Vendors whose every part reports leaf 0x80000000 (AMD since the K5 model 1)."""


ENUMERATED = frozenset({0x4, 0xB, 0x1B, 0x1F, 0x8000_001D, 0x8000_0026})
"""Leaves whose subleaf 0 may already be the terminator, so a tool prints none of them."""


@dataclass(frozen=True)
class Recording:
    """What one dump format records of each logical CPU."""

    name: str
    may_skip: frozenset[int] = ENUMERATED
    """Leaves the tool leaves out when they hold nothing (their bits stay unknown)."""
    limits: Mapping[int, int] = field(default_factory=dict)
    """Range base -> highest leaf the format can hold (libcpuid's fixed arrays)."""
    every_cpu: bool = False
    """The tool lists every logical CPU the OS runs, so fewer than a package is a cut file."""
    centaur: bool = True
    """The format records VIA/Zhaoxin's 0xC0000000 range (their PadLock features live there)."""

    @property
    def records_less(self) -> bool:
        """Some leaves the processor declares are never in this format's files."""
        return bool(self.limits) or not self.centaur


AIDA = Recording("AIDA64", every_cpu=True)
CPUID_R = Recording("cpuid -r", every_cpu=True)
LIBCPUID = Recording("libcpuid", limits={STANDARD_BASE: 0x1F, EXTENDED_BASE: EXTENDED_BASE + 0x1F})
JSON = Recording("cpucompat JSON")

BY_SOURCE = {"replay:aida": AIDA, "replay:libcpuid": LIBCPUID, "replay:cpuid-r": CPUID_R}
"""The recording a replayed capture came from: a libcpuid capture written again as
``cpuid -r`` or JSON still lacks the leaves libcpuid never records."""


@dataclass(frozen=True)
class CpuRecord:
    """One logical CPU as read from a file: its trimmed leaves and where it lies."""

    index: int
    leaves: Mapping[LeafKey, Regs]
    line: int | None
    """The CPU's header line (None without a header)."""
    last_line: int | None
    """The last line holding one of its leaves: where a cut file stops."""


def _top(leaves: Mapping[LeafKey, Regs], base: int) -> int | None:
    head = leaves.get((base, 0))
    if head is None:
        return None
    if base == STANDARD_BASE:
        return head[0]
    return head[0] if base <= head[0] < base + 0x100 else None


def _span(leaves: list[int]) -> str:
    first, last = leaves[0], leaves[-1]
    if first == last:
        return f"leaf 0x{first:08x}"
    text = f"0x{first:08x}-0x{last:08x}"
    return (
        f"leaves {text}" if len(leaves) == last - first + 1 else f"{len(leaves)} leaves in {text}"
    )


def _missing_leaves(cpu: CpuRecord, rec: Recording) -> str | None:
    """What the CPU's own leaf 0 / 0x80000000 / 0xC0000000 declare that the file lacks."""
    keys = {leaf for leaf, _ in cpu.leaves}
    for base in (STANDARD_BASE, EXTENDED_BASE, *([CENTAUR_BASE] if _centaur(cpu, rec) else [])):
        top = _top(cpu.leaves, base)
        if top is None:
            continue
        top = min(top, rec.limits.get(base, top))
        missing = [
            leaf
            for leaf in range(base + 1, top + 1)
            if leaf not in keys and leaf not in rec.may_skip
        ]
        if missing:
            return (
                f"{_span(missing)} that its leaf 0x{base:08x} declares "
                f"(maximum 0x{top:08x}) are missing"
            )
    return None


def _centaur(cpu: CpuRecord, rec: Recording) -> bool:
    """The Centaur range counts: a VIA/Zhaoxin part in a format that records it.

    ``cpuid -r`` probes 0xC0000000 on every processor; elsewhere it means nothing.
    """
    return rec.centaur and vendor_string(cpu.leaves[(0, 0)]) in CENTAUR_VENDORS


def _has_sse2(cpu: CpuRecord) -> bool:
    leaf1 = cpu.leaves.get((1, 0))
    return cpu.leaves[(0, 0)][0] >= 1 and leaf1 is not None and bool(leaf1[3] & SSE2)


def _missing_range(cpu: CpuRecord, rec: Recording, cpus: Sequence[CpuRecord]) -> str | None:
    """A range the CPU must report but lacks: others in the file have it, or its kind must."""
    vendor = vendor_string(cpu.leaves[(0, 0)])
    ranges = [(EXTENDED_BASE, "extended", vendor in EXTENDED_RANGE_VENDORS or _has_sse2(cpu))]
    if _centaur(cpu, rec):
        # VIA since the C7 and every Zhaoxin part: SSE2 and the Centaur range go together
        ranges.append((CENTAUR_BASE, "Centaur", _has_sse2(cpu)))
    for base, name, must in ranges:
        if (base, 0) in cpu.leaves:
            continue
        having = [
            other.index
            for other in cpus
            if (base, 0) in other.leaves and (base != CENTAUR_BASE or _centaur(other, rec))
        ]
        if having:
            why = f"logical CPU #{having[0]} has it"
        elif must:
            why = "every processor of this vendor or with SSE2 has it"
        else:
            continue
        return f"the {name} leaves (0x{base:08x} and up) are missing though {why}"
    return None


def hybrid(leaves: Mapping[LeafKey, Regs]) -> bool:
    """The processor says its cores are not all alike (Intel hybrid, AMD heterogeneous)."""
    top = _top(leaves, STANDARD_BASE) or 0
    leaf7 = leaves.get((7, 0))
    if top >= 7 and leaf7 is not None and leaf7[3] & INTEL_HYBRID:
        return True
    ext_top = _top(leaves, EXTENDED_BASE) or 0
    return ext_top >= 0x8000_0026 and any(
        regs[0] & AMD_HETEROGENEOUS for (leaf, _), regs in leaves.items() if leaf == 0x8000_0026
    )


def package_size(leaves: Mapping[LeafKey, Regs]) -> tuple[int, str] | None:
    """Logical CPUs in one package as the processor reports them, and the leaf that says so."""
    top = _top(leaves, STANDARD_BASE) or 0
    for leaf in (0x1F, 0xB):
        if leaf > top:
            continue
        levels = [
            regs
            for (lf, _), regs in sorted(leaves.items())
            if lf == leaf and regs[2] >> 8 & 0xFF and regs[1] & 0xFFFF
        ]
        if levels:
            return levels[-1][1] & 0xFFFF, f"leaf 0x{leaf:x}"
    head = leaves.get((0, 0))
    ext8 = leaves.get((EXTENDED_BASE + 8, 0))
    ext_top = _top(leaves, EXTENDED_BASE) or 0
    if (
        head is not None
        and vendor_string(head) in ("AuthenticAMD", "HygonGenuine")
        and ext8 is not None
        and ext_top >= EXTENDED_BASE + 8
    ):
        return (ext8[2] & 0xFF) + 1, "leaf 0x80000008"
    return None


def check_complete(
    origin: str, rec: Recording, cpus: Sequence[CpuRecord], listed: int, numbered: bool
) -> None:
    """Refuse a file whose CPUs lack leaves they declare or that lists too few CPUs.

    ``listed`` counts every CPU the file names (empty sections too); ``numbered``
    says the file gave CPU headers with numbers (``cpuid -r -1`` gives one CPU, unnumbered).
    """
    cut = "the file is cut short or damaged: take the dump again"
    for cpu in cpus:
        missing = _missing_leaves(cpu, rec) or _missing_range(cpu, rec, cpus)
        if missing is not None:
            raise DumpError(origin, f"logical CPU #{cpu.index}: {missing}; {cut}", cpu.last_line)
    if not (rec.every_cpu and numbered and cpus and hybrid(cpus[0].leaves)):
        return
    size = package_size(cpus[0].leaves)
    if size is not None and listed < size[0]:
        last = cpus[-1]
        raise DumpError(
            origin,
            f"the file lists {listed} logical CPU(s) of a hybrid processor but {size[1]} of "
            f"logical CPU #{cpus[0].index} says one package holds {size[0]}, and {rec.name} "
            "lists every logical CPU: the file is cut short at a CPU boundary, and the "
            "missing CPUs may be another core type; take the dump again",
            last.last_line,
        )
