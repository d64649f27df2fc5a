"""Sides built once per decoded profile: the same answers, within the cache's bound."""

from __future__ import annotations

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.domain import sides
from cpucompat.coordinator.domain.kvm_offerable import Hypervisor
from cpucompat.coordinator.domain.requirement import Requirement
from tests.support.paths import PROCESSORS

ZEN3 = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"


def test_a_kept_side_equals_one_built_afresh_for_every_name_and_flag() -> None:
    profile = decode(load_dump(ZEN3))
    for hypervisor in Hypervisor:
        for name in ("a", "b"):
            req = sides.requirement_of(profile, name, hypervisor=hypervisor)
            assert req == Requirement.from_profile(profile, name, hypervisor)
            assert sides.requirement_of(profile, name, hypervisor=hypervisor) is req
            for stale in (False, True):
                view = sides.target_of(profile, name, stale=stale, hypervisor=hypervisor)
                assert view.name == name and view.stale == stale
                assert sides.target_of(profile, name, stale=stale, hypervisor=hypervisor) is view
    assert sides.requirement_of(profile, "a", invtsc=True) != sides.requirement_of(profile, "a")


def test_another_decoding_of_the_same_dump_gets_its_own_sides() -> None:
    first, second = decode(load_dump(ZEN3)), decode(load_dump(ZEN3))
    assert sides.target_of(first, "x") is not sides.target_of(second, "x")
    assert sides.target_of(first, "x") == sides.target_of(second, "x")


def test_sides_stay_within_their_bound() -> None:
    profile = decode(load_dump(ZEN3))
    for n in range(sides.SIDE_ENTRIES + 50):
        sides.target_of(profile, f"h{n}")
    stats = sides._SIDES.stats()
    assert stats.size <= sides.SIDE_ENTRIES and stats.evictions >= 50
