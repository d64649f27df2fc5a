"""A compact report is validated, stored and decoded class by class, with exactly the
results of the CPU-by-CPU path (issue 13, item 4: fast ingest).

The coordinator keeps a report's classes beside its CPUs (`RawCapture.classes`) so a
128-CPU server costs its few classes; the CPU-by-CPU path is what a full report from an
older agent takes, and what the same capture takes without its classes. For every
project fixture and shared dump, and for generated captures sent split any way a
sender may split them (hostile ones included), both paths give the same error or the
same stored bytes and the same decoded profile.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpucompat.agent.cpu_classes import PER_CPU_MASKS, ClassMember, SplitCpus, split_cpus
from cpucompat.agent.decode import CpuView, _TypeGroup, _view_key, decode, view_of
from cpucompat.agent.errors import CpucompatError
from cpucompat.agent.profile import Profile
from cpucompat.agent.raw import LeafKey, LogicalCpu, RawCapture, Regs, validate_capture
from cpucompat.agent.wire import capture_from_proto, capture_to_proto
from cpucompat.coordinator.storage.blobs import pack_capture, unpack_capture
from cpucompat.v1 import profile_pb2
from tests.support.dump_sets import PROJECT_DUMPS, SHARED, read
from tests.support.paths import PROCESSORS
from tests.support.shared import shared_dump

MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"


def received(msg: profile_pb2.RawCapture) -> RawCapture:
    """What the coordinator makes of the bytes a client sent."""
    return capture_from_proto(profile_pb2.RawCapture.FromString(msg.SerializeToString()))


def outcome(fn, capture: RawCapture) -> object:
    """A result, or the error it was refused with (its class and message)."""
    try:
        return fn(capture)
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def grouped(capture: RawCapture) -> list[tuple[tuple[int, ...], frozenset[str]]]:
    """First fit of every CPU's own view, no shortcut: the CPU types decoding must find."""
    vendor = decode(capture).vendor
    views: dict[tuple[object, ...], CpuView] = {}
    groups: list[_TypeGroup] = []
    for cpu in capture.cpus:
        key = _view_key(cpu)
        view = views.setdefault(key, view_of(cpu, vendor))
        for group in groups:
            if group.accepts(view):
                group.add(cpu, view)
                break
        else:
            groups.append(_TypeGroup.start(cpu, view))
    groups.sort(key=lambda g: min(c.index for c in g.cpus))
    return [(tuple(sorted(c.index for c in g.cpus)), g.features) for g in groups]


def assert_same_as_cpu_by_cpu(fast: RawCapture, slow: RawCapture) -> Profile | None:
    """``fast`` (with its classes) and ``slow`` (CPU by CPU) agree on everything stored."""
    assert fast.split_form() is not None and slow.split_form() is None
    assert fast == slow
    checked = outcome(validate_capture, fast)
    assert checked == outcome(validate_capture, slow)
    decoded = outcome(decode, fast)
    assert decoded == outcome(decode, slow)
    if checked is not None or not isinstance(decoded, Profile):
        return None
    slow_profile = decode(slow)
    assert decoded.fingerprint == slow_profile.fingerprint
    assert decoded.cpu_types == slow_profile.cpu_types
    assert decoded.report_fingerprint == slow_profile.report_fingerprint
    packed, slow_packed = pack_capture(fast), pack_capture(slow)
    assert packed.own == slow_packed.own
    assert dict(packed.classes) == dict(slow_packed.classes)
    stored = unpack_capture(packed.own, packed.classes)
    assert stored.split_form() is not None
    assert stored == slow
    assert decode(stored) == slow_profile
    assert pack_capture(stored) == packed  # a stored version packs to its own bytes again
    assert [(t.logical_cpus, t.features) for t in decoded.cpu_types] == grouped(slow)
    return decoded


def both_paths(capture: RawCapture) -> tuple[RawCapture, RawCapture]:
    """As a compact report (agents now) and as a full one (older agents)."""
    return (
        received(capture_to_proto(capture, compact=True)),
        received(capture_to_proto(capture)),
    )


@pytest.mark.parametrize("path", PROJECT_DUMPS, ids=lambda p: p.name)
def test_every_project_fixture_is_stored_and_decoded_alike_by_class(path: Path) -> None:
    assert assert_same_as_cpu_by_cpu(*both_paths(read(path))) is not None


@pytest.mark.parametrize("name", [p.name for p in SHARED] or ["absent"])
def test_every_shared_dump_is_stored_and_decoded_alike_by_class(name: str) -> None:
    capture = read(shared_dump(name))
    fast, slow = both_paths(capture)
    assert_same_as_cpu_by_cpu(fast, slow)
    # and a capture without its classes is the one every importer makes
    assert decode(replace(fast, classes=None)) == decode(capture)


def test_a_capture_copied_with_other_cpus_forgets_its_classes() -> None:
    fast, _ = both_paths(read(shared_dump(MILAN)))
    fewer = replace(fast, cpus=fast.cpus[:3])
    assert fewer.split_form() is None  # never the classes of the 128 CPUs it came with
    assert pack_capture(fewer) == pack_capture(replace(fast, cpus=fast.cpus[:3], classes=None))
    assert decode(fewer).logical_cpu_count == 3


# ---- generated captures, split every way a sender may ------------------------------


SOURCES = [read(p) for p in PROJECT_DUMPS]
BAD_KEYS: list[LeafKey] = [(0x5000_0000, 0), (0x0000_0200, 0), (0x8000_0001, 0x100)]


@st.composite
def captures(draw: st.DrawFn) -> RawCapture:
    """A project dump with registers changed (per-CPU fields, feature bits, anything),
    CPUs reordered, XCR0 changed, or a leaf no processor has."""
    base = draw(st.sampled_from(SOURCES))
    # Copies of its CPUs with other per-CPU fields (APIC and topology ids): a bigger host.
    indices, cpus, xcr0 = [], [], []
    for copy in range(draw(st.integers(1, 4))):
        for cpu in base.cpus:
            index = cpu.index + 1000 * copy
            leaves = dict(cpu.leaves)
            for (leaf, sub), regs in cpu.leaves.items():
                masks = [PER_CPU_MASKS.get((leaf, reg), 0) for reg in range(4)]
                if copy and any(masks):
                    fresh = [
                        (r & ~m) | (index * 0x9E37_79B1 & m)
                        for r, m in zip(regs, masks, strict=True)
                    ]
                    leaves[(leaf, sub)] = (fresh[0], fresh[1], fresh[2], fresh[3])
            indices.append(index)
            cpus.append(leaves)
            xcr0.append(cpu.xcr0)
    for _ in range(draw(st.integers(0, 6))):
        n = draw(st.integers(0, len(cpus) - 1))
        keys = sorted(cpus[n])
        key = draw(st.sampled_from(keys))
        reg = draw(st.integers(0, 3))
        if draw(st.booleans()):
            mask = PER_CPU_MASKS.get((key[0], reg)) or 0xFFFF_FFFF
            value = cpus[n][key][reg] ^ (draw(st.integers(0, 0xFFFF_FFFF)) & mask)
        else:
            value = draw(st.integers(0, 0xFFFF_FFFF))
        every = draw(st.booleans())  # a different processor, or one odd CPU
        for m in range(len(cpus)) if every else [n]:
            if key in cpus[m]:
                regs = list(cpus[m][key])
                regs[reg] = value
                cpus[m][key] = (regs[0], regs[1], regs[2], regs[3])
    if draw(st.integers(0, 9)) == 0:
        n = draw(st.integers(0, len(cpus) - 1))
        cpus[n][draw(st.sampled_from(BAD_KEYS))] = (1, 2, 3, 4)
    if draw(st.integers(0, 2)) == 0:
        xcr0[draw(st.integers(0, len(cpus) - 1))] = draw(st.sampled_from([None, 0x3, 0x7]))
    order = draw(st.permutations(range(len(cpus))))
    return replace(base, cpus=tuple(LogicalCpu(indices[i], cpus[i], xcr0[i]) for i in order))


@st.composite
def foreign_splits(draw: st.DrawFn, cpus: tuple[LogicalCpu, ...]) -> SplitCpus:
    """Any split that expands to ``cpus``: CPUs grouped at will (same leaves only), a
    member's registers as the class (its per-CPU fields cleared or not, so classes may
    repeat), overrides for every difference, some redundant, in any order, classes
    numbered in any order."""
    labels: dict[tuple[LeafKey, ...], list[int]] = {}
    classes: list[dict[LeafKey, Regs]] = []
    assigned: list[int] = []
    for cpu in cpus:
        keys = tuple(sorted(cpu.leaves))
        mine = labels.setdefault(keys, [])
        pick = draw(st.integers(0, len(mine)))  # an existing class of these keys, or a new one
        if pick == len(mine):
            mine.append(len(classes))
            leaves = dict(cpu.leaves)
            if draw(st.integers(0, 3)):  # its per-CPU fields cleared, as the agent sends a class
                leaves = split_cpus([LogicalCpu(cpu.index, leaves)]).classes[0]
            classes.append(dict(leaves))
        assigned.append(mine[pick])
    numbering = list(range(len(classes)))  # in order of first use, as the agent numbers
    if draw(st.booleans()):
        numbering = draw(st.permutations(numbering))
    members = []
    for cpu, label in zip(cpus, assigned, strict=True):
        base = classes[label]
        overrides = [
            (leaf, sub, reg, cpu.leaves[(leaf, sub)][reg])
            for (leaf, sub), regs in base.items()
            for reg in range(4)
            if cpu.leaves[(leaf, sub)][reg] != regs[reg]
            or (leaf in (0x1, 0xB) and draw(st.integers(0, 7)) == 0)
        ]
        overrides = draw(st.permutations(overrides))
        members.append(ClassMember(cpu.index, numbering[label], cpu.xcr0, tuple(overrides)))
    ordered = [classes[numbering.index(n)] for n in range(len(classes))]
    return SplitCpus(tuple(ordered), tuple(members))


def split_to_proto(capture: RawCapture, split: SplitCpus) -> profile_pb2.RawCapture:
    msg = capture_to_proto(capture)
    del msg.cpus[:]
    for leaves in split.classes:
        msg.cpu_classes.add().leaves.extend(
            profile_pb2.CpuidLeaf(leaf=leaf, subleaf=sub, eax=r[0], ebx=r[1], ecx=r[2], edx=r[3])
            for (leaf, sub), r in leaves.items()
        )
    for m in split.members:
        out = msg.compact_cpus.add(cpu=m.index, cpu_class=m.cpu_class)
        if m.xcr0 is not None:
            out.xcr0 = m.xcr0
        out.overrides.extend(
            profile_pb2.RegisterOverride(leaf=leaf, subleaf=sub, register=reg + 1, value=value)
            for leaf, sub, reg, value in m.overrides
        )
    return msg


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(captures())
def test_a_generated_compact_report_is_what_its_cpus_are(capture: RawCapture) -> None:
    assert_same_as_cpu_by_cpu(*both_paths(capture))


@SETTINGS
@given(st.data())
def test_a_report_split_another_way_is_stored_as_the_agent_would_store_it(
    data: st.DataObject,
) -> None:
    capture = data.draw(captures())
    split = data.draw(foreign_splits(capture.cpus))
    fast = received(split_to_proto(capture, split))
    assert_same_as_cpu_by_cpu(fast, received(capture_to_proto(capture)))
    if outcome(validate_capture, fast) is None:
        # what is stored is the agent's split, whatever split the sender chose
        assert pack_capture(fast) == pack_capture(replace(fast, classes=None))
        assert split_cpus(fast.cpus) == split_cpus(capture.cpus)


def test_a_cpu_overriding_leaf_zero_is_refused_by_its_own_name() -> None:
    capture = read(PROCESSORS / "amd-zen5-zen5c-edited.cpuid-r.txt")
    msg = capture_to_proto(capture, compact=True)
    # the third CPU's vendor string (leaf 0 EBX) is overridden with control characters
    msg.compact_cpus[2].overrides.add(leaf=0, subleaf=0, register=2, value=0x0101_0101)
    fast = received(msg)
    with pytest.raises(CpucompatError, match=f"logical CPU {fast.cpus[2].index}: vendor"):
        validate_capture(fast)
    assert outcome(validate_capture, replace(fast, classes=None)) == outcome(validate_capture, fast)
    assert outcome(decode, fast) == outcome(decode, replace(fast, classes=None))
