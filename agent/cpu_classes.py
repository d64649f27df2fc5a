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

from .raw import (
    MAX_LEAVES_PER_CPU,
    MAX_LOGICAL_CPUS,
    LeafKey,
    LogicalCpu,
    RawCapture,
    RawDataError,
    Regs,
)

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


@dataclass(frozen=True)
class CpuClasses:
    """A capture's CPUs as they were sent (or stored): the split and what it expands to.

    Kept beside the capture (`RawCapture.classes`) so the coordinator validates, stores
    and decodes a 128-CPU report in the time its few classes take, not its 8,000 leaves;
    every shortcut gives exactly what the expanded ``cpus`` give.
    """

    sent: SplitCpus
    """The split as it came, checked by :func:`expand_cpus` (it may group CPUs otherwise
    than :func:`split_cpus` would: an older or foreign sender's choice)."""
    cpus: tuple[LogicalCpu, ...]
    """``expand_cpus(sent)``, member by member: the capture's ``cpus``, the same object."""
    canonical: SplitCpus | None
    """``split_cpus(cpus)``, when ``sent`` is already that (the agent's always is), found
    without splitting again; None otherwise."""


def expand_classes(split: SplitCpus) -> CpuClasses:
    """Expand a split capture (refusing one that does not add up) and keep its classes."""
    cpus = expand_cpus(split)
    return CpuClasses(split, cpus, _canonical(split))


def split_of(capture: RawCapture) -> SplitCpus:
    """:func:`split_cpus` of the capture's CPUs; from the form they came in when it is that."""
    classes = capture.split_form()
    if classes is not None and classes.canonical is not None:
        return classes.canonical
    return split_cpus(capture.cpus)


def _canonical(split: SplitCpus) -> SplitCpus | None:
    """What :func:`split_cpus` makes of ``expand_cpus(split)``, or None when it is not ``split``
    up to redundant and unordered overrides; ``split`` must have expanded without error.

    split_cpus clears the per-CPU fields of every CPU, numbers the distinct results in
    order of first use, and gives each CPU, in key and register order, the registers of
    its per-CPU leaves that differ from its class. So ``split`` is that exactly when its
    classes hold no per-CPU bit and are distinct, first used in number order, and no
    override changes a bit outside the per-CPU fields.
    """
    contents: set[frozenset[tuple[LeafKey, Regs]]] = set()
    for leaves in split.classes:
        for (leaf, _), regs in leaves.items():
            if leaf in _PER_CPU_LEAVES and any(
                regs[i] & PER_CPU_MASKS.get((leaf, i), 0) for i in range(4)
            ):
                return None
        content = frozenset(leaves.items())
        if content in contents:
            return None
        contents.add(content)
    members = []
    used = 0
    for member in split.members:
        if member.cpu_class > used:
            return None
        used += member.cpu_class == used
        base = split.classes[member.cpu_class]
        kept = []
        for override in member.overrides:
            leaf, sub, reg, value = override
            old = base[(leaf, sub)][reg]
            if (value ^ old) & ~PER_CPU_MASKS.get((leaf, reg), 0):
                return None
            if value != old:
                kept.append(override)
        kept.sort()
        if len(kept) != len(member.overrides) or kept != list(member.overrides):
            member = ClassMember(member.index, member.cpu_class, member.xcr0, tuple(kept))
        members.append(member)
    return SplitCpus(split.classes, tuple(members))


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
        regs = own.get((leaf, sub))
        if (
            regs is None
            or not 0 <= reg <= 3
            or (leaf, sub, reg) in done
            or not 0 <= value <= 0xFFFF_FFFF
        ):
            raise _bad_override(member.index, leaf, sub, reg, value, regs is None, done)
        done.add((leaf, sub, reg))
        changed = list(regs)
        changed[reg] = value
        own[(leaf, sub)] = (changed[0], changed[1], changed[2], changed[3])
    return LogicalCpu(index=member.index, leaves=own, xcr0=member.xcr0)


def _bad_override(
    index: int,
    leaf: int,
    sub: int,
    reg: int,
    value: int,
    missing: bool,
    done: set[tuple[int, int, int]],
) -> RawDataError:
    """Why an override cannot be applied (its message built only when it is refused)."""
    where = f"logical CPU {index}: override of leaf 0x{leaf:08x} subleaf {sub}"
    if missing:
        return RawDataError(f"{where} names a leaf its class does not hold")
    if not 0 <= reg <= 3:
        return RawDataError(f"{where} names no register; give EAX, EBX, ECX or EDX")
    if (leaf, sub, reg) in done:
        return RawDataError(f"{where} gives register {reg} twice")
    return RawDataError(f"{where}: {value} is not a 32-bit register value")
