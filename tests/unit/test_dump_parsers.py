"""The dump importers against real dumps (../shared/cpuid-dumps) and hand-written fixtures.

The shared corpus is checked with small computations done here, independent
of the importers: CPU headers counted with plain regexes, vendor from the file
name, family/model/stepping from leaf 1 with Linux's rule.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pytest

from cpucompat.agent.dumps import (
    MAX_DUMP_BYTES,
    DumpError,
    detect_format,
    load_dump,
    parse_dump,
    render_cpuid_r,
)
from cpucompat.agent.raw import LogicalCpu, RawCapture, RawDataError
from tests.support.paths import DUMPS as FIXTURES
from tests.support.shared import manifest_entries, shared_dumps_or_skip

NOT_A_DUMP = (
    "not a CPUID dump: expected AIDA64/InstLatx64 text, libcpuid raw, "
    "cpuid -r output or cpucompat JSON"
)


def vendor(cpu: LogicalCpu) -> str:
    _, ebx, ecx, edx = cpu.leaves[(0, 0)]
    return b"".join(r.to_bytes(4, "little") for r in (ebx, edx, ecx)).decode("latin-1")


def family_model_stepping(cpu: LogicalCpu) -> tuple[int, int, int]:
    """Linux's rule: ext family counts when family is 0xF, ext model from family 6 up."""
    eax = cpu.leaves[(1, 0)][0]
    family = eax >> 8 & 0xF
    model = eax >> 4 & 0xF
    if family == 0xF:
        family += eax >> 20 & 0xFF
    if family >= 6:
        model += (eax >> 16 & 0xF) << 4
    return family, model, eax & 0xF


def subleaves(cpu: LogicalCpu, leaf: int) -> list[int]:
    return sorted(sub for (lf, sub) in cpu.leaves if lf == leaf)


# --------------------------------------------------------------------------------------------
# the shared corpus of real dumps


MANIFEST = manifest_entries()
MANIFEST_NAMES = [str(entry["file"]) for entry in MANIFEST] or ["<shared dumps absent>"]


@pytest.fixture
def shared() -> Path:
    return shared_dumps_or_skip()


_CPU_HEADERS = [
    re.compile(r"^-+\[ (?:CPUID Registers / )?Logical CPU #(\d+) \]-+\s*$"),
    re.compile(r"^CPU#(\d+) AffMask: "),
    re.compile(r"^CPUID Registers \(CPU #(\d+)\):\s*$"),
    re.compile(r"^_+ Logical CPU #(\d+) _+\s*$"),
    re.compile(r"^CPU (\d+):\s*$"),
]


def header_numbers(path: Path) -> list[int]:
    """The CPU numbers of the per-CPU headers, or [0] for a file without any."""
    numbers = []
    for line in path.read_text().splitlines():
        for header in _CPU_HEADERS:
            m = header.match(line)
            if m:
                numbers.append(int(m[1]))
                break
    return numbers or [0]


def expected_vendors(name: str) -> set[str]:
    if name.startswith(("amd-", "cpuid-r-amd-")) or "AuthenticAMD" in name:
        return {"AuthenticAMD"}
    if name.startswith("intel-") or "GenuineIntel" in name:
        return {"GenuineIntel"}
    if name.startswith("via-"):
        return {"CentaurHauls"}
    if name.startswith("zhaoxin-"):
        return {"CentaurHauls", "  Shanghai  "}
    raise AssertionError(f"no vendor known for {name}")


def expected_source(fmt: str) -> str:
    if fmt.startswith("aida"):
        return "replay:aida"
    if fmt.startswith("libcpuid"):
        return "replay:libcpuid"
    if fmt.startswith("cpuid-r"):
        return "replay:cpuid-r"
    raise AssertionError(f"unknown format {fmt}")


@pytest.mark.shared
def test_manifest_lists_every_dump(shared: Path) -> None:
    on_disk = {p.name for p in shared.glob("*.txt")}
    assert on_disk == {str(entry["file"]) for entry in MANIFEST}
    assert len(on_disk) == 33


@pytest.mark.shared
@pytest.mark.parametrize("name", MANIFEST_NAMES)
def test_shared_dump(shared: Path, name: str) -> None:
    entry = next(e for e in MANIFEST if e["file"] == name)
    path = shared / name
    capture = load_dump(path)
    assert capture.source == expected_source(str(entry["format"]))
    assert capture.origin == str(path)
    assert capture.replayed
    assert [cpu.index for cpu in capture.cpus] == header_numbers(path)
    for cpu in capture.cpus:
        assert cpu.xcr0 is None
        assert vendor(cpu) in expected_vendors(name)
        assert family_model_stepping(cpu) == (entry["family"], entry["model"], entry["stepping"])
        # nothing outside the reported ranges survives
        top = cpu.leaves[(0, 0)][0]
        assert all(leaf <= top for (leaf, _) in cpu.leaves if leaf < 0x4000_0000)


@pytest.mark.shared
def test_largest_dump_parses_every_cpu(shared: Path) -> None:
    path = max(shared.glob("*.txt"), key=lambda p: p.stat().st_size)
    # Its speed is measured in benchmarks/ (no wall-clock limits in tests): here, every CPU.
    capture = load_dump(path)
    assert len(capture.cpus) == 256


def _untagged_section_leaves(path: Path, leaf: int) -> list[tuple[int, int, int, int]]:
    """Registers of every ``CPUID <leaf>`` line of the first CPU section, in file order."""
    out = []
    lines = path.read_text().splitlines()
    for line in lines[1:]:
        if "Logical CPU #" in line:
            break
        if line.startswith(f"CPUID {leaf:08X}:"):
            out.append(tuple(int(x, 16) for x in line.split()[2].split("-")))
    return out


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("intel-x86-64-sandy-bridge-intel-core-i5-2400-cpu.txt", {4: 4, 0xB: 2, 0xD: [0, 2]}),
        ("intel-x86-64-nehalem-intel-core-i5-cpu-650.txt", {4: 4, 0xB: 2, 0xD: []}),
        ("intel-x86-64-core-intel-core2-duo-cpu-p8400.txt", {4: 3, 0xB: 0, 0xD: []}),
        ("intel-x86-atom-silvermont-intel-atom-cpu-z3740.txt", {4: 3, 0xB: 2, 0xD: []}),
    ],
)
def test_old_aida_untagged_repeats(
    shared: Path, name: str, expected: dict[int, int | list[int]]
) -> None:
    """Untagged repeats are subleaves in order, except 0xD: subleaf 0 then the XSAVE components."""
    path = shared / name
    capture = load_dump(path)
    cpu = capture.cpus[0]
    for leaf, want in expected.items():
        lines = _untagged_section_leaves(path, leaf)
        subs = list(range(want)) if isinstance(want, int) else want
        assert subleaves(cpu, leaf) == subs
        assert [cpu.get(leaf, sub) for sub in subs] == lines
    if name.startswith("intel-x86-64-sandy-bridge"):
        for each in capture.cpus:
            assert each.get(0xD, 0) == (0x7, 0x340, 0x340, 0)
            assert each.get(0xD, 2) == (0x100, 0x240, 0, 0)  # AVX: 256 bytes at offset 576
            assert each.get(0xD, 1) is None


@pytest.mark.shared
def test_aida_tags_are_hex_and_gaps_kept(shared: Path) -> None:
    cpu = load_dump(shared / "instlatx64-GenuineIntel0050654_SkylakeXeon_CPUID.txt").cpus[0]
    assert subleaves(cpu, 0xD) == [0, 1, 2, 3, 4, 5, 6, 7, 9]
    cpu = load_dump(shared / "intel-x86-64-raptor-cove-intel-core-i5-14600k.txt").cpus[0]
    assert {0xB, 0xC, 0xF} <= set(subleaves(cpu, 0xD))


@pytest.mark.shared
def test_aida_msr_sections_are_not_cpuid(shared: Path) -> None:
    path = shared / "instlatx64-GenuineIntel00306F2_HaswellEP_00_CPUID.txt"
    lines = path.read_text().splitlines()
    start = lines.index("------[ CPUID Registers / Logical CPU #0 ]------")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("------["))
    leaf_lines = [line for line in lines[start:end] if re.match(r"CPUID [0-9A-F]{8}:", line)]
    capture = load_dump(path)
    assert len(capture.cpus) == 16  # the 16 MSR sections add no CPU
    assert len(capture.cpus[0].leaves) == len(leaf_lines) == 32


@pytest.mark.shared
def test_aida_ranges(shared: Path) -> None:
    k8 = load_dump(shared / "amd-k8-amd-opteron-processor-248.txt").cpus[0]
    assert k8.get(0x8FFF_FFFF) is None  # AIDA's AMD easter egg, above the extended maximum
    assert max(leaf for leaf, _ in k8.leaves) == 0x8000_0018
    via = load_dump(shared / "via-isaiah-via-nano-processor-l2200.txt").cpus[0]
    assert [leaf for leaf, _ in via.leaves if leaf >= 0xC000_0000] == [
        0xC000_0000,
        0xC000_0001,
        0xC000_0002,
        0xC000_0003,
        0xC000_0004,
    ]
    k10 = load_dump(shared / "amd-k10-amd-athlon-ii-x4-620-processor.txt")
    assert [cpu.index for cpu in k10.cpus] == [1, 2, 3, 4]


@pytest.mark.shared
def test_libcpuid_trimming(shared: Path) -> None:
    cpu = load_dump(shared / "intel-x86-64-skylake-intel-core-i5-8265u-cpu.txt").cpus[0]
    assert max(leaf for leaf, _ in cpu.leaves if leaf < 0x8000_0000) == 0x16  # [23..31] repeat 0x16
    assert max(leaf for leaf, _ in cpu.leaves) == 0x8000_0008
    assert subleaves(cpu, 4) == [0, 1, 2, 3]  # intel_fn4[4..7] are zero padding
    assert subleaves(cpu, 0xB) == [0, 1, 2, 3]  # the invalid levels still carry ECX/EDX
    assert cpu.get(0xB, 2) == (0, 0, 2, 5)
    assert subleaves(cpu, 0x8000_001D) == []  # Intel: above the extended maximum
    amd = load_dump(shared / "amd-bulldozer-amd-a8-7680-radeon-r7-10-compute-cores-4c+6g.txt")
    for each in amd.cpus:
        assert subleaves(each, 4) == [0]
        assert each.get(4, 0) == (0, 0, 0, 0)
        assert subleaves(each, 0xB) == [0]  # intel_fn11[1..3] are zero padding
        assert subleaves(each, 0x8000_001D) == [0, 1, 2]


@pytest.mark.shared
def test_cpuid_r_probe_ranges_dropped(shared: Path) -> None:
    cpu = load_dump(shared / "cpuid-r-amd-epyc-kvm-guest.txt").cpus[0]
    leaves = {leaf for leaf, _ in cpu.leaves}
    assert {0x2000_0000, 0x4000_0100, 0x8086_0000}.isdisjoint(leaves)
    assert {0x4000_0000, 0x4000_0001, 0x8000_0022} <= leaves
    assert subleaves(cpu, 0xD) == [0, 1, 2, 9, 0xB, 0xC]


# --------------------------------------------------------------------------------------------
# hand-written fixtures: every format and variant, runnable without ../shared


def fixture(name: str) -> Path:
    return FIXTURES / name


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("aida-sections.txt", "aida"),
        ("aida-affmask.txt", "aida"),
        ("aida-old-colon.txt", "aida"),
        ("aida-old-xsave-sl1.txt", "aida"),
        ("aida-tab.txt", "aida"),
        ("libcpuid-multi.txt", "libcpuid"),
        ("libcpuid-single.txt", "libcpuid"),
        ("cpuid-r-two-cpus.txt", "cpuid-r"),
        ("cpuid-r-single.txt", "cpuid-r"),
        ("capture.json", "json"),
        ("unknown-format.txt", None),
    ],
)
def test_detect_format(name: str, kind: str | None) -> None:
    assert detect_format(fixture(name).read_text()) == kind


def test_aida_full_report() -> None:
    capture = load_dump(fixture("aida-sections.txt"))
    assert capture.source == "replay:aida"
    assert [cpu.index for cpu in capture.cpus] == [0, 1]
    cpu = capture.cpus[0]
    assert vendor(cpu) == "AuthenticAMD"
    assert family_model_stepping(cpu) == (0x19, 0x01, 1)
    # the CPUID-looking lines of the MSR section are never read
    assert cpu.get(0) == (0x10, 0x68747541, 0x444D4163, 0x69746E65)
    assert subleaves(cpu, 0xD) == [0, 1, 2, 9, 0xB, 0xC]  # [SL 0B] is hex
    assert cpu.get(0xD, 0xB) == (0x10, 0, 1, 0)
    assert subleaves(cpu, 0x8000_001D) == [0, 1, 2, 3]
    assert cpu.get(0x8000_0001) == (0x00A00F11, 0x40000000, 0x004003F3, 0x2FD3FBFF)
    assert cpu.get(0x8FFF_FFFF) is None
    assert len(cpu.leaves) == 60  # every leaf leaves 0 and 0x80000000 declare, AIDA's 4 aside
    assert capture.cpus[1].get(0xB, 1) == (5, 2, 0x201, 1)


def test_aida_affmask_variant() -> None:
    capture = load_dump(fixture("aida-affmask.txt"))
    assert [cpu.index for cpu in capture.cpus] == [0, 1]
    assert subleaves(capture.cpus[0], 0xD) == [0, 1, 2]
    assert capture.cpus[0].get(0x8000_0008) == (0x00303030, 0x130AD205, 0x7001, 0)
    assert capture.cpus[1].get(1) == (0x00A00F11, 0x01020800, 0xFFFA3203, 0x178BFBFF)


def test_aida_old_variant_untagged_repeats() -> None:
    capture = load_dump(fixture("aida-old-colon.txt"))
    assert [cpu.index for cpu in capture.cpus] == [0, 1]
    for cpu in capture.cpus:
        assert vendor(cpu) == "GenuineIntel"
        assert subleaves(cpu, 4) == [0, 1, 2, 3]
        assert cpu.get(4, 3) == (0x0400C163, 0x02C0003F, 0xFFF, 6)
        assert subleaves(cpu, 0xB) == [0, 1]
        assert subleaves(cpu, 0xD) == [0, 2]  # mask 7: after subleaf 0 comes component 2
        assert cpu.get(0xD, 2) == (0x100, 0x240, 0, 0)
    assert capture.cpus[1].get(0xB, 1) == (2, 4, 0x201, 1)


def test_aida_old_variant_xsave_subleaf_1() -> None:
    cpu = load_dump(fixture("aida-old-xsave-sl1.txt")).cpus[0]
    # three lines for a mask with one component: the extra one is subleaf 1
    assert subleaves(cpu, 0xD) == [0, 1, 2]
    assert cpu.get(0xD, 1) == (1, 0, 0, 0)
    assert cpu.get(0xD, 2) == (0x100, 0x240, 0, 0)


def test_aida_old_variant_xsave_ambiguous() -> None:
    """An extra untagged 0xD line that cannot be subleaf 1 is reported, not guessed."""
    text = (
        fixture("aida-old-xsave-sl1.txt")
        .read_text()
        .replace("0000000D: 00000001-00000000", "0000000D: 00000040-000003C0")
    )
    first_xsave = text.splitlines().index("CPUID 0000000D: 00000007-00000340-00000340-00000000")
    with pytest.raises(DumpError, match=rf"^x\.txt:{first_xsave + 1}: leaf 0xD is given 3 times"):
        parse_dump(text, "x.txt")


# An i486-era leaf 0 (maximum leaf 0): complete on its own, so it needs no other leaf.
AIDA_LEAF0 = "CPUID 00000000: 00000000-756E6547-6C65746E-49656E69 [GenuineIntel]"


def test_aida_free_text_before_first_leaf() -> None:
    capture = parse_dump(f"CPUID dump of a test box\n\n{AIDA_LEAF0}\n", "t.txt")
    assert [cpu.index for cpu in capture.cpus] == [0]
    with pytest.raises(DumpError, match=r"^t\.txt:3: expected 'CPUID LLLLLLLL"):
        parse_dump(f"{AIDA_LEAF0}\n\nnot an AIDA note\n", "t.txt")


def test_aida_malformed_tag_is_not_a_note() -> None:
    with pytest.raises(DumpError, match=r"^t\.txt:2: expected 'CPUID LLLLLLLL"):
        parse_dump(f"{AIDA_LEAF0}\n{AIDA_LEAF0[:-15]} [SL ZZ]\n", "t.txt")


def test_libcpuid_key_shapes() -> None:
    head = "basic_cpuid[0]=00000000 756e6547 6c65746e 49656e69\n"
    known_later = "intel_fn99h[0]=00000001 00000002 00000003 00000004\narm_midr=00000000410fd083\n"
    assert len(parse_dump(head + known_later, "t").cpus[0].leaves) == 1
    with pytest.raises(DumpError, match=r"^t:2: expected 'intel_fn99h\[N\]=EAX EBX ECX EDX'"):
        parse_dump(head + "intel_fn99h[0]=00000001 00000002\n", "t")
    with pytest.raises(DumpError, match=r"^t:2: basic_cpuid\[268435456\]: index out of range"):
        parse_dump(head + "basic_cpuid[268435456]=0 0 0 0\n", "t")


def test_cpuid_r_without_subleaf_field() -> None:
    """Very old cpuid versions printed no subleaf: those lines are subleaf 0."""
    text = "CPU 0:\n   0x00000000: eax=0x00000000 ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69\n"
    assert parse_dump(text, "t").cpus[0].get(0) == (0, 0x756E6547, 0x6C65746E, 0x49656E69)


def test_aida_tab_variant() -> None:
    capture = load_dump(fixture("aida-tab.txt"))
    assert [cpu.index for cpu in capture.cpus] == [1, 2]
    cpu = capture.cpus[0]
    assert cpu.get(0x11) is None  # above the maximum 0x10
    assert cpu.get(0x8000_0001) == (0x00A00F11, 0x40000000, 0x004003F3, 0x2FD3FBFF)


def test_libcpuid_multi() -> None:
    capture = load_dump(fixture("libcpuid-multi.txt"))
    assert capture.source == "replay:libcpuid"
    assert [cpu.index for cpu in capture.cpus] == [0, 1]
    cpu = capture.cpus[0]
    assert max(leaf for leaf, _ in cpu.leaves if leaf < 0x8000_0000) == 0x10
    assert subleaves(cpu, 4) == [0]  # zero padding beyond subleaf 0 dropped
    assert subleaves(cpu, 0xB) == [0, 1, 2, 3]
    assert subleaves(cpu, 0x12) == subleaves(cpu, 0x14) == []  # above the maximum
    assert subleaves(cpu, 0x8000_001D) == [0, 1, 2, 3]
    assert subleaves(cpu, 0x8000_0026) == []
    assert len(cpu.leaves) == 55  # leaves 0-0x10 and 0x80000000-0x8000001F (libcpuid's arrays)
    assert capture.cpus[1].get(0xB, 1) == (5, 2, 0x201, 1)


def test_libcpuid_single_without_header() -> None:
    capture = load_dump(fixture("libcpuid-single.txt"))
    assert [cpu.index for cpu in capture.cpus] == [0]
    cpu = capture.cpus[0]
    assert vendor(cpu) == "GenuineIntel"
    assert cpu.get(0xE) is None and cpu.get(0xF) is None  # Intel repeats 0xD above the max
    assert cpu.get(0x8000_0009) is None
    assert subleaves(cpu, 4) == [0, 1, 2, 3]
    assert subleaves(cpu, 0x8000_001D) == []
    assert len(cpu.leaves) == 29  # nothing read after the line of dashes


def test_cpuid_r_fixtures() -> None:
    capture = load_dump(fixture("cpuid-r-two-cpus.txt"))
    assert capture.source == "replay:cpuid-r"
    assert [cpu.index for cpu in capture.cpus] == [0, 1]
    cpu = capture.cpus[0]
    assert len(cpu.leaves) == 65
    assert cpu.get(0xD, 0xB) == (0x10, 0, 1, 0)  # subleaf '0x0b' is hex
    assert {0x2000_0000, 0x4000_0100, 0x8086_0000}.isdisjoint(leaf for leaf, _ in cpu.leaves)
    assert cpu.get(0xC000_0000) == (0, 0, 0, 0)
    single = load_dump(fixture("cpuid-r-single.txt"))
    assert [cpu.index for cpu in single.cpus] == [0]


def test_json_fixture() -> None:
    capture = load_dump(fixture("capture.json"))
    assert capture.source == "replay:json"
    assert capture.extra == {"json_source": "cpuid-instruction"}
    assert capture.microcode == "0x1000065"
    assert capture.origin == str(fixture("capture.json"))
    assert [cpu.index for cpu in capture.cpus] == [0, 1]
    # The project's JSON keeps XCR0 as recorded (a live probe reads it on every CPU).
    assert [cpu.xcr0 for cpu in capture.cpus] == [
        None if c.get("xcr0") is None else int(c["xcr0"], 16)
        for c in json.loads(fixture("capture.json").read_text())["cpus"]
    ]
    assert capture.cpus[0].get(0x2000_0000) is None
    assert subleaves(capture.cpus[0], 0xD) == [0, 1]


def test_json_whole_probe_document() -> None:
    doc = {"raw": json.loads(fixture("capture.json").read_text()), "profile": {}}
    capture = parse_dump(json.dumps(doc), "probe.json")
    assert capture.source == "replay:json"
    assert len(capture.cpus) == 2


@pytest.mark.parametrize(
    "name",
    [
        "aida-sections.txt",
        "aida-affmask.txt",
        "aida-old-colon.txt",
        "aida-tab.txt",
        "libcpuid-multi.txt",
        "cpuid-r-two-cpus.txt",
        "capture.json",
    ],
)
def test_render_cpuid_r_round_trip(name: str) -> None:
    capture = load_dump(fixture(name))
    again = parse_dump(render_cpuid_r(capture), "rendered")
    assert again.source == "replay:cpuid-r"
    assert [(c.index, dict(c.leaves)) for c in again.cpus] == [
        (c.index, dict(c.leaves)) for c in capture.cpus
    ]


def test_render_cpuid_r_format() -> None:
    capture = RawCapture(
        cpus=(LogicalCpu(index=3, leaves={(0xD, 0xB): (0x10, 0, 1, 0), (0, 0): (0xD, 1, 2, 3)}),),
        source="cpuid-instruction",
    )
    assert render_cpuid_r(capture) == (
        "CPU 3:\n"
        "   0x00000000 0x00: eax=0x0000000d ebx=0x00000001 ecx=0x00000002 edx=0x00000003\n"
        "   0x0000000d 0x0b: eax=0x00000010 ebx=0x00000000 ecx=0x00000001 edx=0x00000000\n"
    )


# --------------------------------------------------------------------------------------------
# errors: always DumpError, naming the file and the line


@pytest.mark.parametrize(
    ("name", "line", "fragment"),
    [
        (
            "bad-aida-leaf.txt",
            12,
            "expected 'CPUID LLLLLLLL: EAX-EBX-ECX-EDX', got 'CPUID 0000000Z: ",
        ),
        ("bad-aida-over32.txt", 3, "EAX 0x100A00F11 does not fit in 32 bits"),
        ("bad-aida-duplicate.txt", 5, "given twice with different values (first on line 4)"),
        ("bad-aida-no-leaf0.txt", 5, "logical CPU #1 has no leaf 0"),
        ("bad-aida-xsave.txt", 4, "leaf 0xD is given 4 times without [SL nn] tags"),
        ("bad-aida-garbage.txt", 3, "expected 'CPUID LLLLLLLL: EAX-EBX-ECX-EDX', got 'this line"),
        ("bad-libcpuid-garbage.txt", 3, "expected 'basic_cpuid[N]=EAX EBX ECX EDX'"),
        ("bad-libcpuid-values.txt", 2, "got 'basic_cpuid[1]=00a00f11 00020800 fffa3203'"),
        ("bad-libcpuid-duplicate.txt", 4, "basic_cpuid[1] given twice with different values"),
        ("bad-cpuid-r-subleaf.txt", 3, "expected '0xLLLLLLLL 0xSS: eax=0xAAAAAAAA"),
        ("bad-cpuid-r-over32.txt", 2, "eax 0x100000010 does not fit in 32 bits"),
        ("bad-json-syntax.json", 4, "invalid JSON: Expecting ',' delimiter"),
    ],
)
def test_malformed_fixture(name: str, line: int, fragment: str) -> None:
    path = fixture(name)
    with pytest.raises(DumpError) as caught:
        load_dump(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: ")
    assert fragment in message
    assert caught.value.line == line
    assert caught.value.origin == str(path)


def test_error_message_exact() -> None:
    text = fixture("bad-aida-leaf.txt").read_text()
    with pytest.raises(DumpError) as caught:
        parse_dump(text, "foo.txt")
    assert str(caught.value) == (
        "foo.txt:12: expected 'CPUID LLLLLLLL: EAX-EBX-ECX-EDX', "
        "got 'CPUID 0000000Z: 00000000-00000000-00000000-00000000'"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("unknown-format.txt", NOT_A_DUMP),
        ("empty.txt", "empty file: " + NOT_A_DUMP),
        ("bad-json-hex.json", "cpus[0].leaves[0] leaf: '0x000000ZZ' is not a hex number"),
    ],
)
def test_file_level_errors(name: str, message: str) -> None:
    path = fixture(name)
    with pytest.raises(DumpError) as caught:
        load_dump(path)
    assert str(caught.value) == f"{path}: {message}"


def test_dump_error_is_raw_data_error() -> None:
    err = DumpError("foo.txt", "expected 'X', got 'Y'", 12)
    assert isinstance(err, RawDataError) and isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == "foo.txt:12: expected 'X', got 'Y'"


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(
        DumpError, match=r"garbage\.bin:2: undecodable byte 0x80 at offset 128: expected UTF-8"
    ):
        load_dump(path)
    path.write_bytes(b"CPU 0:\n\x00\x01\x02")
    with pytest.raises(DumpError, match=r"garbage\.bin:2: binary data"):
        load_dump(path)


def test_undecodable_line_number(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    text = fixture("aida-affmask.txt").read_text()
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "[48 / 48]" in row)
    path.write_bytes(text.replace("[48 / 48]", "[48 \xb5 48]").encode("latin-1"))
    with pytest.raises(DumpError, match=rf"latin1\.txt:{line}: undecodable byte 0xb5"):
        load_dump(path)


def test_utf16_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "utf16.txt"
    text = fixture("cpuid-r-two-cpus.txt").read_text()
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-16"))
    assert load_dump(path).cpus == load_dump(fixture("cpuid-r-two-cpus.txt")).cpus
    bad = fixture("bad-cpuid-r-subleaf.txt").read_text().replace("\n", "\r\n")
    with pytest.raises(DumpError, match=r"^crlf:3: expected"):
        parse_dump(bad, "crlf")


def test_oversized_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as f:
        f.truncate(MAX_DUMP_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(DumpError, match=rf"huge\.txt: file is {MAX_DUMP_BYTES + 1} bytes"):
        load_dump(path)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match=r"missing\.txt: cannot read"):
        load_dump(tmp_path / "missing.txt")
    with pytest.raises(DumpError, match="cannot read"):
        load_dump(tmp_path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"a": ' + "[" * 100_000, "invalid JSON: maximum recursion depth"),
        ('{"format": "cpucompat-raw", "version": 2, "cpus": []}', "version 2 is not supported"),
        ('{"format": "cpucompat-raw", "version": 1, "cpus": []}', '"cpus" must be a non-empty'),
        (
            '{"format": "cpucompat-raw", "version": 1, "cpus": ['
            '{"cpu": 0, "leaves": [["0x1", "0x0", "0x0", "0x0", "0x0", "0x0"]]}]}',
            "logical CPU #0 has no leaf 0",
        ),
        (
            '{"format": "cpucompat-raw", "version": 1, "cpus": ['
            '{"cpu": 0, "leaves": [["0x0", "0x0", "0x0", "0x0", "0x0", "0x0"]]},'
            '{"cpu": 0, "leaves": [["0x0", "0x0", "0x0", "0x0", "0x0", "0x1"]]}]}',
            "logical CPU #0 is given twice with different leaves",
        ),
    ],
)
def test_json_errors(text: str, fragment: str) -> None:
    with pytest.raises(DumpError) as caught:
        parse_dump(text, "doc.json")
    assert str(caught.value).startswith("doc.json")
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        f"------[ Logical CPU #0 ]------\n{AIDA_LEAF0}\n------[" + " " * 100_000 + "x",
        f"{AIDA_LEAF0}\n{AIDA_LEAF0[:-15]}" + " " * 100_000 + "[SL ZZ]",
        "basic_cpuid[0]=" + "a " * 100_000 + "x",
        "CPU 0:\n   0x00000000 0x00:" + " " * 100_000 + "x",
        "--[ " + "]-- " * 100_000,
    ],
    ids=["aida-section", "aida-leaf", "libcpuid-values", "cpuid-r-leaf", "detection"],
)
def test_pathological_lines_stay_linear(text: str) -> None:
    """Long runs of spaces or separators are refused with a DumpError, not a crash."""
    with pytest.raises(DumpError):
        parse_dump(text, "long")


def test_cpu_given_twice() -> None:
    """The same CPU twice with the same leaves is kept once (and said so); else it is refused."""
    text = fixture("cpuid-r-single.txt").read_text().replace("CPU:", "CPU 0:")
    header = text.splitlines().index("CPU 0:") + 1
    again = header + len(text.splitlines())
    capture = parse_dump(text + text, "t")
    assert [cpu.index for cpu in capture.cpus] == [0]
    assert capture.cpus == parse_dump(text, "t").cpus
    assert capture.warnings == (
        f"logical CPU #0 is given again on line {again} with the same leaves; kept once",
    )
    changed = text.replace("ebx=0x01020800", "ebx=0x02020800")
    with pytest.raises(
        DumpError,
        match=rf"^t:{again}: logical CPU #0 is given twice with different leaves "
        rf"\(first on line {header}\)$",
    ):
        parse_dump(text + changed, "t")
