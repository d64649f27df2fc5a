"""CPU types are core types: the processor's own core-type report or a real difference.

Edited fixtures (their headers say what was changed in which shared dump) stand for
parts the shared collection lacks: a Zen 5 + Zen 5c package, an X3D part whose CCDs
differ in L3, per-core leaf-2 descriptors, and a CPU whose dump lacks a subleaf.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import parse_dump
from cpucompat.agent.profile import Profile
from cpucompat.agent.raw import LogicalCpu, RawCapture
from tests.support.daemons import run_cli
from tests.support.paths import PROCESSORS
from tests.support.shared import shared_profile

ZEN5_ZEN5C = PROCESSORS / "amd-zen5-zen5c-edited.cpuid-r.txt"
X3D = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
LEAF2 = PROCESSORS / "intel-skylake-leaf2-edited.cpuid-r.txt"
MISSING_LEAF = PROCESSORS / "intel-skylake-missing-leaf-edited.cpuid-r.txt"


def dump_text(path: Path) -> str:
    """The fixture's `cpuid -r` text without its header (the edit notes are `#` lines)."""
    return "".join(
        line for line in path.read_text().splitlines(keepends=True) if not line.startswith("#")
    )


def load(path: Path) -> RawCapture:
    return parse_dump(dump_text(path), str(path))


def types_by_name(profile: Profile) -> dict[str | None, tuple[int, ...]]:
    return {t.core_type: t.logical_cpus for t in profile.cpu_types}


def with_regs(
    capture: RawCapture, index: int, leaf: int, subleaf: int, reg: int, value: int
) -> RawCapture:
    """The capture with one register of one CPU's leaf replaced."""
    cpus = []
    for cpu in capture.cpus:
        if cpu.index == index:
            leaves = dict(cpu.leaves)
            regs = list(leaves[(leaf, subleaf)])
            regs[reg] = value
            leaves[(leaf, subleaf)] = (regs[0], regs[1], regs[2], regs[3])
            cpu = LogicalCpu(cpu.index, leaves, cpu.xcr0)
        cpus.append(cpu)
    return replace(capture, cpus=tuple(cpus))


def leaf(capture: RawCapture, index: int, key: tuple[int, int]) -> object:
    return next(c for c in capture.cpus if c.index == index).leaves.get(key)


# --- the processor's core-type report ---------------------------------------------------------


def test_zen5_and_zen5c_cores_are_two_named_types() -> None:
    capture = load(ZEN5_ZEN5C)
    profile = decode(capture)
    assert types_by_name(profile) == {"zen5": (0, 1), "zen5c": (2, 3)}
    zen5, zen5c = profile.cpu_types
    # Same instruction set on both (the edit changed only the core type): the host keeps
    # every feature and either core type can restore the other's saved state.
    assert zen5.features == zen5c.features == profile.features
    assert {"avx512f", "avx_vnni", "amd_htr_cores"} <= profile.features
    assert zen5.fingerprint == zen5c.fingerprint == profile.fingerprint


def test_core_type_is_read_only_where_the_processor_says_its_cores_differ() -> None:
    capture = load(ZEN5_ZEN5C)
    for cpu in capture.cpus:  # clear HeterogeneousCores (0x80000026.0 EAX[30]) everywhere
        eax = cpu.leaves[(0x8000_0026, 0)][0]
        capture = with_regs(capture, cpu.index, 0x8000_0026, 0, 0, eax & ~(1 << 30))
    profile = decode(capture)
    assert types_by_name(profile) == {None: (0, 1, 2, 3)}


def test_other_amd_families_name_core_types_performance_and_efficiency() -> None:
    capture = load(ZEN5_ZEN5C)
    for cpu in capture.cpus:  # family 19h (Zen 3/4): base family 0xF + extended family 0xA
        eax = cpu.leaves[(1, 0)][0]
        capture = with_regs(capture, cpu.index, 1, 0, 0, eax & ~0x0FF0_0000 | 0xA << 20)
    profile = decode(capture)
    assert profile.family == 0x19
    assert types_by_name(profile) == {"performance": (0, 1), "efficiency": (2, 3)}


def test_zen5c_types_are_named_in_the_probe_output(tmp_path: Path) -> None:
    dump = tmp_path / "zen5-zen5c.txt"
    dump.write_text(dump_text(ZEN5_ZEN5C))
    result = run_cli("probe", "--from-dump", str(dump), "--json")
    assert result.returncode == 0, result.stderr
    types = json.loads(result.stdout)["cpu_types"]
    assert [(t["core_type"], t["logical_cpus"]) for t in types] == [
        ("zen5", [0, 1]),
        ("zen5c", [2, 3]),
    ]
    shown = run_cli("probe", "--from-dump", str(dump))
    assert shown.returncode == 0, shown.stderr
    assert "CPUs 0-1: zen5," in shown.stdout and "CPUs 2-3: zen5c," in shown.stdout


@pytest.mark.parametrize(
    ("name", "performance", "efficiency"),
    [
        ("intel-x86-64-golden-cove-12th-gen-intel-core-i9-12900hk.txt", 12, 8),
        ("intel-x86-64-raptor-cove-intel-core-i5-14600k.txt", 12, 8),
        # The SoC tile's low-power E cores have no L3 but are E cores: one type with the others.
        ("intel-x86-64-lion-cove-intel-core-ultra-7-265u.txt", 4, 10),
    ],
)
def test_intel_hybrid_parts_give_named_performance_and_efficiency_types(
    name: str, performance: int, efficiency: int
) -> None:
    profile = shared_profile(name)
    counts = {t.core_type: len(t.logical_cpus) for t in profile.cpu_types}
    assert counts == {"performance": performance, "efficiency": efficiency}
    listed = sorted(c for t in profile.cpu_types for c in t.logical_cpus)
    assert listed == sorted(c.index for c in profile.raw.cpus)


# --- what never makes a type ------------------------------------------------------------------


def test_an_x3d_ccd_with_more_l3_is_the_same_type() -> None:
    capture = load(X3D)
    assert leaf(capture, 3, (0x8000_001D, 3)) != leaf(capture, 0, (0x8000_001D, 3))
    profile = decode(capture)
    assert types_by_name(profile) == {None: (0, 1, 2, 3)}
    # The L3 changes nothing that decides a restore: same fingerprint without CPU 3.
    without = decode(replace(capture, cpus=capture.cpus[:3]))
    assert profile.fingerprint == without.fingerprint
    assert profile.features == without.features


def test_per_core_leaf2_descriptors_are_the_same_type() -> None:
    capture = load(LEAF2)
    assert leaf(capture, 1, (2, 0)) != leaf(capture, 0, (2, 0))
    assert types_by_name(decode(capture)) == {None: (0, 1)}


def test_a_real_feature_difference_still_makes_a_type() -> None:
    capture = load(X3D)
    ebx = capture.cpus[3].leaves[(7, 0)][1]
    assert ebx & 1 << 29  # sha_ni
    profile = decode(with_regs(capture, 3, 7, 0, 1, ebx & ~(1 << 29)))
    assert [t.logical_cpus for t in profile.cpu_types] == [(0, 1, 2), (3,)]
    assert "sha_ni" in profile.cpu_types[0].features
    assert "sha_ni" not in profile.features  # the host has what every CPU has


# --- a CPU missing a leaf ---------------------------------------------------------------------

XSAVE_SUBLEAF1 = {"xsaveopt", "xsavec", "xgetbv1", "xsaves"}


def test_a_cpu_missing_a_leaf_is_not_another_type() -> None:
    capture = load(MISSING_LEAF)
    assert leaf(capture, 1, (0xD, 1)) is None and leaf(capture, 0, (0xD, 1)) is not None
    profile = decode(capture)
    assert types_by_name(profile) == {None: (0, 1)}
    # CPU 0 tells what CPU 1's dump lacks: the host keeps those features.
    assert profile.features >= XSAVE_SUBLEAF1
    assert profile.unknown_features == frozenset()
    # Whichever CPU comes first, the same processor.
    reordered = decode(replace(capture, cpus=capture.cpus[::-1]))
    assert reordered.fingerprint == profile.fingerprint
    assert [t.logical_cpus for t in reordered.cpu_types] == [(0, 1)]


def test_features_only_the_missing_leaf_tells_are_unknown_not_missing() -> None:
    capture = load(MISSING_LEAF)
    alone = decode(replace(capture, cpus=capture.cpus[1:]))
    assert alone.unknown_features >= XSAVE_SUBLEAF1
    assert not XSAVE_SUBLEAF1 & alone.features
    # Everything the CPU's own leaves tell is as with its sibling.
    assert alone.features | XSAVE_SUBLEAF1 == decode(capture).features
