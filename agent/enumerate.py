"""Which CPUID leaves and subleaves to read, as the vendors' manuals define them.

One function walks the ranges for any reader (the instruction itself or
/dev/cpu/N/cpuid), so both sources produce the same set of leaves.
Subleaf walks are capped: a buggy hypervisor must not make the probe loop.
"""

from __future__ import annotations

from collections.abc import Callable

from .raw import CENTAUR_BASE, EXTENDED_BASE, HYPERVISOR_BASE, LeafKey, Regs, vendor_string

Reader = Callable[[int, int], Regs]

MAX_SUBLEAVES = 64
MAX_LEAVES_PER_RANGE = 0x100
HYPERVISOR_BIT = 1 << 31  # CPUID.1:ECX[31]
CENTAUR_VENDORS = frozenset({"CentaurHauls", "  Shanghai  "})


def _bits(mask: int, start: int = 0, stop: int = 64) -> list[int]:
    return [i for i in range(start, stop) if mask >> i & 1]


def _until(
    read: Reader, leaf: int, done: Callable[[Regs], bool], keep_last: bool
) -> dict[LeafKey, Regs]:
    """Read subleaves 0, 1, ... until ``done`` says a subleaf is the terminator."""
    out: dict[LeafKey, Regs] = {}
    for sub in range(MAX_SUBLEAVES):
        regs = read(leaf, sub)
        if done(regs) and sub > 0:
            if keep_last:
                out[(leaf, sub)] = regs
            break
        out[(leaf, sub)] = regs
        if done(regs):
            break
    return out


def _counted(read: Reader, leaf: int, first: Regs, count_reg: int = 0) -> dict[LeafKey, Regs]:
    """Subleaves 0..N where subleaf 0 reports N (leaves 7, 0x14, 0x17, 0x18, 0x1D, 0x20, 0x24)."""
    out: dict[LeafKey, Regs] = {(leaf, 0): first}
    top = min(first[count_reg], MAX_SUBLEAVES - 1)
    for sub in range(1, top + 1):
        out[(leaf, sub)] = read(leaf, sub)
    return out


def _masked(read: Reader, leaf: int, first: Regs, subleaves: list[int]) -> dict[LeafKey, Regs]:
    out: dict[LeafKey, Regs] = {(leaf, 0): first}
    for sub in subleaves[:MAX_SUBLEAVES]:
        if sub:
            out[(leaf, sub)] = read(leaf, sub)
    return out


def _typed(read: Reader, leaf: int, start: int, type_mask: int) -> dict[LeafKey, Regs]:
    """Subleaves from ``start`` while their type field (EAX & type_mask) is not 0 (invalid)."""
    out: dict[LeafKey, Regs] = {}
    for sub in range(start, MAX_SUBLEAVES):
        regs = read(leaf, sub)
        if regs[0] & type_mask == 0:
            break
        out[(leaf, sub)] = regs
    return out


def _cache_type_zero(regs: Regs) -> bool:
    return regs[0] & 0x1F == 0


def _level_type_zero(regs: Regs) -> bool:
    return (regs[2] >> 8) & 0xFF == 0


def read_standard_leaf(read: Reader, leaf: int) -> dict[LeafKey, Regs]:
    """One standard (or extended) leaf with all the subleaves it defines."""
    if leaf in (0x4, 0x8000001D):
        return _until(read, leaf, _cache_type_zero, keep_last=False)
    if leaf in (0xB, 0x1F, 0x80000026):
        return _until(read, leaf, _level_type_zero, keep_last=True)
    first = read(leaf, 0)
    if leaf in (0x7, 0x14, 0x17, 0x18, 0x1D, 0x20, 0x24):
        return _counted(read, leaf, first)
    if leaf == 0x1E:
        return _counted(read, leaf, first) if first[0] < 16 else {(leaf, 0): first}
    if leaf == 0xD:
        sub1 = read(0xD, 1)
        user = first[0] | first[3] << 32
        supervisor = sub1[2] | sub1[3] << 32
        out = {(0xD, 0): first, (0xD, 1): sub1}
        for comp in _bits(user | supervisor, 2):
            out[(0xD, comp)] = read(0xD, comp)
        return out
    if leaf == 0xF:
        return _masked(read, leaf, first, _bits(first[3], 1, 32))
    if leaf == 0x10:
        return _masked(read, leaf, first, _bits(first[1], 1, 32))
    if leaf == 0x12:
        # SGX: subleaves 0 and 1 always, then EPC sections until type EAX[3:0] is 0 (SDM vol. 3D
        # 37.7.2: "all invalid sub-leaves of CPUID leaf 12H return EAX/EBX/ECX/EDX with 0").
        out = {(0x12, 0): first, (0x12, 1): read(0x12, 1)}
        out.update(_typed(read, 0x12, 2, 0xF))
        return out
    if leaf == 0x1B:
        # PCONFIG targets: subleaves 0, 1, ... until type EAX[11:0] is 0; every later subleaf is
        # invalid too (SDM vol. 2A CPUID leaf 1BH; Linux arch/x86/kernel/cpu/intel_pconfig.c).
        out = {(0x1B, 0): first}
        if first[0] & 0xFFF:
            out.update(_typed(read, 0x1B, 1, 0xFFF))
        return out
    if leaf == 0x23:
        return _masked(read, leaf, first, _bits(first[0], 1, 32))
    if leaf == 0x80000020:
        return _masked(read, leaf, first, _bits(first[1], 1, 32))
    return {(leaf, 0): first}


def _range(read: Reader, base: int, head: Regs) -> dict[LeafKey, Regs]:
    out: dict[LeafKey, Regs] = {(base, 0): head}
    top = head[0]
    if not base < top < base + MAX_LEAVES_PER_RANGE:
        return out
    for leaf in range(base + 1, top + 1):
        out.update(read_standard_leaf(read, leaf))
    return out


def read_all_leaves(read: Reader) -> dict[LeafKey, Regs]:
    """Every leaf and subleaf one logical CPU defines (``read`` runs on that CPU)."""
    head = read(0, 0)
    leaves: dict[LeafKey, Regs] = {(0, 0): head}
    for leaf in range(1, min(head[0], MAX_LEAVES_PER_RANGE - 1) + 1):
        leaves.update(read_standard_leaf(read, leaf))
    if leaves.get((1, 0), (0, 0, 0, 0))[2] & HYPERVISOR_BIT:
        # Hypervisors may stack interfaces in 0x100-leaf blocks (KVM beside Hyper-V).
        for block in range(HYPERVISOR_BASE, HYPERVISOR_BASE + 0x1000, 0x100):
            hv_head = read(block, 0)
            leaves[(block, 0)] = hv_head
            if not block < hv_head[0] < block + 0x100:
                if block == HYPERVISOR_BASE and hv_head[0] == 0 and hv_head[1]:
                    # Old KVM reports 0 as the maximum: 0x40000001 is implied.
                    leaves[(block + 1, 0)] = read(block + 1, 0)
                    continue
                break
            leaves.update(_range(read, block, hv_head))
    leaves.update(_range(read, EXTENDED_BASE, read(EXTENDED_BASE, 0)))
    if vendor_string(head) in CENTAUR_VENDORS:
        leaves.update(_range(read, CENTAUR_BASE, read(CENTAUR_BASE, 0)))
    return leaves
