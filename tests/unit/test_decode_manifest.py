"""Every shared real dump decodes to the identity its MANIFEST states."""

from __future__ import annotations

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from tests.support.paths import SHARED_DUMPS
from tests.support.shared import manifest_entries, shared_dumps_or_skip

ENTRIES = manifest_entries()


@pytest.mark.parametrize("entry", ENTRIES or [None], ids=[e["file"] for e in ENTRIES] or ["absent"])
def test_dump_decodes_to_manifest_identity(entry: dict | None) -> None:
    shared_dumps_or_skip()
    assert entry is not None
    profile = decode(load_dump(SHARED_DUMPS / entry["file"]))
    assert (profile.family, profile.model, profile.stepping) == (
        entry["family"],
        entry["model"],
        entry["stepping"],
    )
    assert profile.x86_64_level == entry["x86_64_level"]
    # MANIFEST counts groups of logical CPUs whose CPUID data differ. CPU types are core
    # types: groups that differ only in caches (the 265U's SoC-tile E-cores have no L3)
    # are one type, so a hybrid part has at least two types and at most that many.
    if entry["logical_cpu_types"] == 1:
        assert len(profile.cpu_types) == 1
    else:
        assert 2 <= len(profile.cpu_types) <= entry["logical_cpu_types"]
        assert all(t.core_type for t in profile.cpu_types)
    assert profile.source.startswith("replay:")
    assert profile.replayed
    # The host's features are what every CPU type has.
    for cpu_type in profile.cpu_types:
        assert profile.features <= cpu_type.features


def test_hybrid_types_list_every_logical_cpu_once() -> None:
    shared_dumps_or_skip()
    name = "intel-x86-64-lion-cove-intel-core-ultra-7-265u.txt"
    capture = load_dump(SHARED_DUMPS / name)
    profile = decode(capture)
    listed = sorted(c for t in profile.cpu_types for c in t.logical_cpus)
    assert listed == sorted(c.index for c in capture.cpus)
    # P cores and E cores; the SoC tile's low-power E cores (same core type, same features,
    # no L3) are E cores too.
    by_name = {t.core_type: t.logical_cpus for t in profile.cpu_types}
    assert by_name == {
        "performance": (0, 1, 10, 11),
        "efficiency": (2, 3, 4, 5, 6, 7, 8, 9, 12, 13),
    }


def test_logical_cpus_of_one_type_share_a_fingerprint_despite_apic_ids() -> None:
    shared_dumps_or_skip()
    capture = load_dump(SHARED_DUMPS / "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt")
    assert len(capture.cpus) == 256
    apic_ids = {cpu.leaves[(1, 0)][1] >> 24 for cpu in capture.cpus}
    assert len(apic_ids) > 1  # the CPUs really do differ in per-CPU fields
    profile = decode(capture)
    assert len(profile.cpu_types) == 1
    assert profile.cpu_types[0].fingerprint == profile.fingerprint
