"""Sides built once per live profile: the same answers, and nothing kept after it."""

from __future__ import annotations

import gc
import weakref

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.domain import sides
from cpucompat.coordinator.domain.compat import TargetView
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
                assert isinstance(view, TargetView)
    invtsc = sides.requirement_of(profile, "a", invtsc=True)
    assert invtsc.invariant_tsc and not sides.requirement_of(profile, "a").invariant_tsc


def test_a_freed_profile_leaves_nothing_behind() -> None:
    profile = decode(load_dump(ZEN3))
    for n in range(3 * sides._PerProfile.LIMIT):  # more names than kept per profile
        sides.target_of(profile, f"h{n}")
    assert len(sides._SIDES._memo[id(profile)][1]) <= sides._PerProfile.LIMIT
    ref = weakref.ref(profile)
    key = id(profile)
    del profile
    gc.collect()
    assert ref() is None and key not in sides._SIDES._memo
