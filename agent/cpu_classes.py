"""Logical CPUs grouped into classes of equal leaves, each CPU's own fields beside its class.

A 128-thread server returns the same CPUID leaves on every logical CPU apart from a
few per-CPU fields (APIC ids, topology ids, a serial number): the wire and the
coordinator's store keep each class of leaves once and, per CPU, only the registers
that differ from its class. Expanding gives back exactly the capture that was split,
so the one decoder sees what it always saw; the masks below only decide how well the
split compresses, never what a CPU returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .raw import MAX_LEAVES_PER_CPU, MAX_LOGICAL_CPUS, LeafKey, LogicalCpu, RawDataError, Regs

# (leaf, register index) -> the bits that differ between the logical CPUs of one core
# type, as every multi-CPU shared dump shows (Intel SDM vol. 2A CPUID; AMD APM vol. 3
# appendix E). They are cleared in the class; each CPU sends its own register value.
PER_CPU_MASKS: Mapping[tuple[int, int], int] = {
    (0x1, 1): 0xFF00_0000,  # EBX[31:24]: initial APIC ID
    (0x3, 2): 0xFFFF_FFFF,  # ECX: processor serial number, low half (Pentium III)
    (0x3, 3): 0xFFFF_FFFF,  # EDX: processor serial number, middle half
    (0x6, 3): 0xFFFF_0000,  # EDX[31:16]: this CPU's row in the hardware feedback table
    (0xB, 3): 0xFFFF_FFFF,  # EDX: x2APIC ID
    (0x1F, 3): 0xFFFF_FFFF,  # EDX: x2APIC ID
    (0x8000_001E, 0): 0xFFFF_FFFF,  # EAX: extended APIC ID
    (0x8000_001E, 1): 0x0000_00FF,  # EBX[7:0]: core (compute unit) ID
    (0x8000_001E, 2): 0x0000_00FF,  # ECX[7:0]: node ID
    (0x8000_0026, 3): 0xFFFF_FFFF,  # EDX: extended APIC ID
    (0xC000_0004, 0): 0xFFFF_FFFF,  # Centaur/Zhaoxin live readings (temperature, clocks)
    (0xC000_0004, 1): 0xFFFF_FFFF,
    (0xC000_0004, 2): 0xFFFF_FFFF,
    (0xC000_0004, 3): 0xFFFF_FFFF,
}

_PER_CPU_LEAVES = frozenset(leaf for leaf, _ in PER_CPU_MASKS)

MAX_EXPANDED_LEAVES = 1 << 20
"""Leaves a split capture may expand to in all (8192 logical CPUs of 128 leaves): a few
bytes on the wire must not make the coordinator build millions of entries."""

Override = tuple[int, int, int, int]
"""(leaf, subleaf, register index 0-3 for EAX..EDX, value) where a CPU differs from its class."""


@dataclass(frozen=True)
class ClassMember:
    """One logical CPU of a split capture: its class and what it returns differently."""

    index: int
    cpu_class: int
    xcr0: int | None = None
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class SplitCpus:
    """Distinct leaf classes, each once, and every logical CPU as a class plus overrides."""

    classes: tuple[Mapping[LeafKey, Regs], ...]
    members: tuple[ClassMember, ...]


def _class_leaves(cpu: LogicalCpu) -> tuple[dict[LeafKey, Regs], list[LeafKey]]:
    """The CPU's leaves with the per-CPU fields cleared, and the keys that had some."""
    out = dict(cpu.leaves)
    own = [key for key in out if key[0] in _PER_CPU_LEAVES]
    for key in own:
        leaf = key[0]
        regs = out[key]
        out[key] = (
            regs[0] & ~PER_CPU_MASKS.get((leaf, 0), 0),
            regs[1] & ~PER_CPU_MASKS.get((leaf, 1), 0),
            regs[2] & ~PER_CPU_MASKS.get((leaf, 2), 0),
            regs[3] & ~PER_CPU_MASKS.get((leaf, 3), 0),
        )
    return out, sorted(own)


def split_cpus(cpus: Sequence[LogicalCpu]) -> SplitCpus:
    """Group CPUs whose leaves are equal once the per-CPU fields are cleared."""
    classes: list[dict[LeafKey, Regs]] = []
    by_content: dict[frozenset[tuple[LeafKey, Regs]], int] = {}
    members = []
    for cpu in cpus:
        leaves, own = _class_leaves(cpu)
        content = frozenset(leaves.items())
        number = by_content.get(content)
        if number is None:
            number = by_content[content] = len(classes)
            classes.append(leaves)
        # Only the per-CPU leaves can differ: the rest is equal to the class by its key.
        base = classes[number]
        overrides = tuple(
            (key[0], key[1], i, cpu.leaves[key][i])
            for key in own
            for i in range(4)
            if cpu.leaves[key][i] != base[key][i]
        )
        members.append(ClassMember(cpu.index, number, cpu.xcr0, overrides))
    return SplitCpus(tuple(classes), tuple(members))


def expand_cpus(split: SplitCpus) -> tuple[LogicalCpu, ...]:
    """The logical CPUs a split capture stands for; refuses one no sender could have made.

    Every reference is checked (the class exists, the overridden leaf is in it, the
    register is EAX..EDX, a CPU number appears once) and the size is bounded before
    anything is built, so hostile input costs no more than its own bytes.
    """
    if len(split.members) > MAX_LOGICAL_CPUS:
        raise RawDataError(f"{len(split.members)} logical CPUs is more than {MAX_LOGICAL_CPUS}")
    if len(split.classes) > len(split.members):
        raise RawDataError(
            f"{len(split.classes)} CPU classes for {len(split.members)} logical CPUs: "
            "every class must be used"
        )
    for number, leaves in enumerate(split.classes):
        if len(leaves) > MAX_LEAVES_PER_CPU:
            raise RawDataError(f"CPU class {number}: {len(leaves)} leaves is beyond any processor")
    total = 0
    seen: set[int] = set()
    used: set[int] = set()
    for member in split.members:
        if member.index in seen:
            raise RawDataError(f"logical CPU {member.index} appears twice")
        seen.add(member.index)
        if not 0 <= member.cpu_class < len(split.classes):
            raise RawDataError(
                f"logical CPU {member.index} refers to CPU class {member.cpu_class}, but the "
                f"report has {len(split.classes)} classes"
            )
        used.add(member.cpu_class)
        size = len(split.classes[member.cpu_class])
        if len(member.overrides) > 4 * size:
            raise RawDataError(
                f"logical CPU {member.index}: {len(member.overrides)} register overrides for "
                f"{size} leaves"
            )
        total += size
    if total > MAX_EXPANDED_LEAVES:
        raise RawDataError(
            f"the report expands to {total} leaves; at most {MAX_EXPANDED_LEAVES} are accepted"
        )
    if len(used) != len(split.classes):
        unused = sorted(set(range(len(split.classes))) - used)
        raise RawDataError(f"CPU class {unused[0]} is used by no logical CPU")
    return tuple(_expand_one(split.classes[m.cpu_class], m) for m in split.members)


def _expand_one(leaves: Mapping[LeafKey, Regs], member: ClassMember) -> LogicalCpu:
    if not member.overrides:
        return LogicalCpu(index=member.index, leaves=leaves, xcr0=member.xcr0)
    own = dict(leaves)
    done: set[tuple[int, int, int]] = set()
    for leaf, sub, reg, value in member.overrides:
        where = f"logical CPU {member.index}: override of leaf 0x{leaf:08x} subleaf {sub}"
        regs = own.get((leaf, sub))
        if regs is None:
            raise RawDataError(f"{where} names a leaf its class does not hold")
        if not 0 <= reg <= 3:
            raise RawDataError(f"{where} names no register; give EAX, EBX, ECX or EDX")
        if (leaf, sub, reg) in done:
            raise RawDataError(f"{where} gives register {reg} twice")
        done.add((leaf, sub, reg))
        if not 0 <= value <= 0xFFFF_FFFF:
            raise RawDataError(f"{where}: {value} is not a 32-bit register value")
        changed = list(regs)
        changed[reg] = value
        own[(leaf, sub)] = (changed[0], changed[1], changed[2], changed[3])
    return LogicalCpu(index=member.index, leaves=own, xcr0=member.xcr0)
