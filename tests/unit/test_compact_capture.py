"""A report carries each distinct logical CPU once, and the coordinator gets back exactly
the capture the agent read (issue 13, item 4): on the wire and in the digest store.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cpucompat.agent.cpu_classes import (
    MAX_EXPANDED_LEAVES,
    ClassMember,
    SplitCpus,
    expand_cpus,
    split_cpus,
)
from cpucompat.agent.decode import decode
from cpucompat.agent.raw import RawCapture, RawDataError
from cpucompat.agent.wire import capture_from_proto, capture_to_proto
from cpucompat.coordinator.storage.blobs import pack_capture, unpack_capture
from cpucompat.v1 import profile_pb2
from tests.support.dump_sets import PROJECT_DUMPS, SHARED, read
from tests.support.paths import DEV_DUMP
from tests.support.shared import shared_dump

MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
ALDER_LAKE = "intel-x86-64-golden-cove-12th-gen-intel-core-i9-12900hk.txt"


def as_received(raw: profile_pb2.RawCapture) -> RawCapture:
    """What the coordinator makes of the bytes a client sent."""
    return capture_from_proto(profile_pb2.RawCapture.FromString(raw.SerializeToString()))


def assert_round_trips(capture: RawCapture) -> None:
    compact = as_received(capture_to_proto(capture, compact=True))
    assert compact == capture
    assert compact == as_received(capture_to_proto(capture))  # the full form, as before
    pack = pack_capture(capture)
    stored = unpack_capture(pack.own, pack.classes)
    assert stored == capture
    fingerprint = decode(capture).fingerprint
    assert decode(compact).fingerprint == decode(stored).fingerprint == fingerprint


@pytest.mark.parametrize("path", PROJECT_DUMPS, ids=lambda p: p.name)
def test_every_project_fixture_round_trips_through_the_compact_form(path: Path) -> None:
    assert_round_trips(read(path))


@pytest.mark.parametrize("name", [p.name for p in SHARED] or ["absent"])
def test_every_shared_dump_round_trips_through_the_compact_form(name: str) -> None:
    assert_round_trips(read(shared_dump(name)))


def test_a_server_report_is_one_class_and_a_tenth_of_the_full_size() -> None:
    capture = read(shared_dump(MILAN))
    full = capture_to_proto(capture)
    compact = capture_to_proto(capture, compact=True)
    assert len(capture.cpus) == 128
    assert len(compact.cpu_classes) == 1  # the APIC and topology ids travel per CPU
    assert compact.ByteSize() * 10 < full.ByteSize()


def test_hybrid_core_types_stay_separate_classes() -> None:
    capture = read(shared_dump(ALDER_LAKE))
    split = split_cpus(capture.cpus)
    core_types = {cpu.leaves[(0x1A, 0)][0] >> 24 for cpu in capture.cpus}
    assert len(core_types) == 2 == len(split.classes)
    for member in split.members:
        # No CPU needs its core type (leaf 0x1A) from an override: it is its class's.
        assert all(leaf != 0x1A for leaf, *_ in member.overrides)


def test_the_stored_class_of_one_model_is_the_same_on_every_host() -> None:
    capture = read(DEV_DUMP)
    # The same model with its CPUs numbered and listed the other way round.
    other = replace(capture, cpus=tuple(reversed(capture.cpus)))
    assert set(pack_capture(capture).classes) == set(pack_capture(other).classes)


# ---- hostile compact captures --------------------------------------------------------


def compact_dev() -> profile_pb2.RawCapture:
    return capture_to_proto(read(DEV_DUMP), compact=True)


def _two_cpus(raw: profile_pb2.RawCapture) -> None:
    raw.compact_cpus[1].cpu = raw.compact_cpus[0].cpu


def _missing_class(raw: profile_pb2.RawCapture) -> None:
    raw.compact_cpus[0].cpu_class = 7


def _unused_class(raw: profile_pb2.RawCapture) -> None:
    raw.cpu_classes.add().CopyFrom(raw.cpu_classes[0])


def _foreign_leaf(raw: profile_pb2.RawCapture) -> None:
    raw.compact_cpus[0].overrides.add(leaf=0x4000_00AA, subleaf=0, register=1, value=1)


def _no_register(raw: profile_pb2.RawCapture) -> None:
    raw.compact_cpus[0].overrides.add(leaf=0, subleaf=0, register=0, value=1)


def _both_forms(raw: profile_pb2.RawCapture) -> None:
    raw.cpus.extend(capture_to_proto(read(DEV_DUMP)).cpus)


def _too_many_leaves(raw: profile_pb2.RawCapture) -> None:
    template = raw.compact_cpus[0]
    del raw.compact_cpus[:]
    for n in range(256):  # a class of plausible size, but thousands of CPUs of it
        raw.cpu_classes[0].leaves.add(leaf=0x4000_0100 + n)
    per_cpu = len(raw.cpu_classes[0].leaves)
    for n in range(MAX_EXPANDED_LEAVES // per_cpu + 1):
        raw.compact_cpus.add(cpu=n, cpu_class=0, overrides=template.overrides)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (_two_cpus, "appears twice"),
        (_missing_class, "refers to CPU class 7"),
        (_unused_class, "used by no logical CPU"),
        (_foreign_leaf, "names a leaf its class does not hold"),
        (_no_register, "names no register"),
        (_both_forms, "send one form"),
        (_too_many_leaves, "leaves; at most"),
    ],
)
def test_a_compact_capture_that_does_not_add_up_is_refused(mutate, needle: str) -> None:
    raw = compact_dev()
    mutate(raw)
    with pytest.raises(RawDataError, match=needle):
        as_received(raw)


def test_expanding_refuses_more_cpus_than_any_host_before_building_them() -> None:
    one = {(0, 0): (0x10, 1, 2, 3)}
    split = SplitCpus(
        classes=(one,), members=tuple(ClassMember(n, 0) for n in range(MAX_EXPANDED_LEAVES + 1))
    )
    with pytest.raises(RawDataError, match="logical CPUs is more than"):
        expand_cpus(split)
