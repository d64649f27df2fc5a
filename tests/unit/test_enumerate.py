"""Which leaves and subleaves the probe reads, replayed from real processors' recorded leaves.

A reader built from a dump answers as the recorded processor did; a subleaf the dump lacks
reads as zeros, which is what the SDM says a processor returns for an invalid subleaf.
"""

from __future__ import annotations

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.enumerate import Reader, read_all_leaves
from cpucompat.agent.raw import LeafKey, LogicalCpu, Regs
from tests.support.shared import shared_dump

KVM_GUEST = "cpuid-r-amd-epyc-kvm-guest.txt"  # recorded with `cpuid -r`
SAPPHIRE_RAPIDS = "instlatx64-GenuineIntel00806F8_SapphireRapids_05_CPUID.txt"
ICE_LAKE_CLIENT = "intel-x86-64-sunny-cove-intel-core-i5-1035g4-cpu.txt"
ALDER_LAKE = "intel-x86-64-golden-cove-12th-gen-intel-core-i9-12900hk.txt"
ZERO: Regs = (0, 0, 0, 0)


def replay(cpu: LogicalCpu, asked: list[LeafKey] | None = None) -> Reader:
    def read(leaf: int, subleaf: int) -> Regs:
        if asked is not None:
            asked.append((leaf, subleaf))
        return cpu.leaves.get((leaf, subleaf), ZERO)

    return read


def first_cpu(name: str) -> LogicalCpu:
    return load_dump(shared_dump(name)).cpus[0]


def reported(cpu: LogicalCpu, leaves: dict[LeafKey, Regs]) -> dict[LeafKey, Regs]:
    """The leaves inside the standard, first hypervisor and extended ranges ``cpu`` reports."""
    tops = {base: cpu.max_leaf(base) for base in (0x0, 0x4000_0000, 0x8000_0000)}
    return {
        k: v
        for k, v in leaves.items()
        if any(top is not None and base <= k[0] <= top for base, top in tops.items())
    }


def test_probe_reads_what_cpuid_r_recorded_on_every_cpu() -> None:
    for cpu in load_dump(shared_dump(KVM_GUEST)).cpus:
        assert reported(cpu, read_all_leaves(replay(cpu))) == reported(cpu, dict(cpu.leaves))


def test_sgx_epc_sections_are_read_until_the_first_invalid_subleaf() -> None:
    cpu = first_cpu(ICE_LAKE_CLIENT)
    assert cpu.leaves[(0x7, 0)][1] >> 2 & 1  # SGX
    asked: list[LeafKey] = []
    ours = read_all_leaves(replay(cpu, asked))
    assert ours[(0x12, 2)][0] & 0xF == 1  # one EPC section
    assert (0x12, 3) in asked and (0x12, 4) not in asked
    assert [k for k in ours if k[0] == 0x12] == [(0x12, 0), (0x12, 1), (0x12, 2)]


def test_pconfig_targets_are_read_until_the_first_invalid_subleaf() -> None:
    cpu = first_cpu(SAPPHIRE_RAPIDS)
    assert cpu.leaves[(0x7, 0)][3] >> 18 & 1  # PCONFIG
    assert cpu.leaves[(0x1B, 0)][0] & 0xFFF == 1  # subleaf 0: a target identifier
    asked: list[LeafKey] = []
    ours = read_all_leaves(replay(cpu, asked))
    assert ours[(0x1B, 0)] == cpu.leaves[(0x1B, 0)]
    # The list goes on until a subleaf of type 0 (Linux intel_pconfig.c stops there too).
    assert (0x1B, 1) in asked and (0x1B, 2) not in asked
    assert [k for k in ours if k[0] == 0x1B] == [(0x1B, 0)]


def test_an_invalid_pconfig_subleaf_0_ends_the_list() -> None:
    cpu = first_cpu(ALDER_LAKE)
    assert not cpu.leaves[(0x7, 0)][3] >> 18 & 1 and cpu.leaves[(0x1B, 0)] == ZERO
    asked: list[LeafKey] = []
    read_all_leaves(replay(cpu, asked))
    assert [k for k in asked if k[0] == 0x1B] == [(0x1B, 0)]
