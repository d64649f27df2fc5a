"""Truncated and inconsistent dumps are refused, never decoded into a smaller processor.

A dump cut anywhere either fails to import with one line naming file, line and
CPU (the CLI exits 2), or decodes every CPU it keeps exactly as the whole dump
does. The rule for whole CPUs missing at the end (accepted unless the processor
is hybrid) is in docs/design-notes.md, "Reading processors".
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import DumpError, load_dump, parse_dump
from cpucompat.agent.feature_table import FEATURE_BITS
from cpucompat.agent.raw import LogicalCpu, RawCapture
from tests.support.daemons import run_cli
from tests.support.paths import DEV_DUMP as DEV
from tests.support.paths import FIXTURES, SHARED_DUMPS
from tests.support.shared import shared_dump

ZEN4 = "amd-zen4-amd-ryzen-9-7900x-12-core-processor.txt"
ZEN3 = "amd-zen3-amd-ryzen-7-5700x3d-8-core-processor.txt"
ZEN5 = "amd-zen5-amd-ryzen-9-9950x-16-core-processor.txt"
ALDER_LAKE = "intel-x86-64-golden-cove-12th-gen-intel-core-i9-12900hk.txt"
ZEN4_CUT = 69817
"""Where the Ryzen 9 7900X dump was cut in the report: inside the 16th CPU's leaf 0xD."""

CUT_FIXTURE = FIXTURES / "dumps" / "cut-cpuid-r-two-cpus.txt"
WHOLE_FIXTURE = FIXTURES / "dumps" / "cpuid-r-two-cpus.txt"
CUT_ONE_LINE = re.compile(r"cpucompat \w+: (?P<file>\S+?):(?P<line>\d+): (?P<what>.+)\n")


def refusal(stderr: str) -> re.Match[str]:
    """The CLI's one-line error, parsed."""
    m = CUT_ONE_LINE.fullmatch(stderr)
    assert m is not None, stderr
    return m


def last_cpu_header(text: str) -> int:
    return int(re.findall(r"Logical CPU #(\d+)|^CPU (\d+):", text, re.M)[-1][0] or 0)


def test_truncated_zen4_is_refused_through_the_cli(tmp_path: Path) -> None:
    whole = shared_dump(ZEN4)
    data = whole.read_bytes()[:ZEN4_CUT]
    cut = tmp_path / "zen4-cut.txt"
    cut.write_bytes(data)
    lines = data.decode().split("\n")
    cpu = int(re.findall(r"Logical CPU #(\d+)", data.decode())[-1])
    assert cpu == 15  # 16 CPUs (#0-#15), the last one cut inside leaf 0xD

    probe = run_cli("probe", "--from-dump", str(cut))
    assert probe.returncode == 2 and probe.stdout == ""
    m = refusal(probe.stderr)
    assert (m["file"], int(m["line"])) == (str(cut), len(lines))
    assert m["what"].startswith(f"logical CPU #{cpu}: ")
    assert "cut short" in m["what"]

    # the whole dump refuses a Zen 3 target (AVX-512 and more); the cut one must not accept it
    zen3 = shared_dump(ZEN3)
    assert run_cli("check", f"dump:{whole}", f"dump:{zen3}").returncode == 3
    check = run_cli("check", f"dump:{cut}", f"dump:{zen3}")
    assert check.returncode == 2 and check.stdout == ""
    assert int(refusal(check.stderr)["line"]) == len(lines)
    assert run_cli("check", f"dump:{zen3}", f"dump:{cut}").returncode == 2


def test_truncated_project_fixture_is_refused_through_the_cli() -> None:
    text = CUT_FIXTURE.read_text()
    assert not text.endswith("\n")  # cut inside its last row
    whole = WHOLE_FIXTURE.read_text()
    assert text.split("\n")[-1] in whole and text.split("\n")[-1] + "\n" not in whole
    last = len(text.split("\n"))
    probe = run_cli("probe", "--from-dump", str(CUT_FIXTURE))
    assert probe.returncode == 2
    m = refusal(probe.stderr)
    assert (m["file"], int(m["line"])) == (str(CUT_FIXTURE), last)
    assert "cut short" in m["what"]
    for args in ((f"dump:{CUT_FIXTURE}", f"dump:{DEV}"), (f"dump:{DEV}", f"dump:{CUT_FIXTURE}")):
        check = run_cli("check", *args)
        assert check.returncode == 2 and int(refusal(check.stderr)["line"]) == last
    assert run_cli("check", f"dump:{WHOLE_FIXTURE}", f"dump:{DEV}").returncode in (0, 3)


def _cut_after_row(text: str, needle: str, cpu_header: str) -> str:
    start = text.index(cpu_header)
    end = text.index("\n", text.index(needle, start)) + 1
    return text[:end]


def test_a_cpu_missing_its_last_leaves_names_them() -> None:
    text = _cut_after_row(WHOLE_FIXTURE.read_text(), "0x00000007 0x00:", "CPU 1:")
    with pytest.raises(DumpError) as caught:
        parse_dump(text, "t.txt")
    last = text.count("\n")
    # 0x8-0x10 but 0xB, an enumerated leaf a dump may lack (see agent/dumps/completeness.py)
    assert str(caught.value) == (
        f"t.txt:{last}: logical CPU #1: 8 leaves in 0x00000008-0x00000010 that its leaf "
        "0x00000000 declares (maximum 0x00000010) are missing; the file is cut short or "
        "damaged: take the dump again"
    )


def test_a_cpu_without_the_extended_range_others_have_is_refused() -> None:
    whole = WHOLE_FIXTURE.read_text()
    start = whole.index("CPU 1:")
    text = whole[: whole.index("   0x80000000", start)]
    with pytest.raises(DumpError, match=r"logical CPU #1: the extended leaves .* logical CPU #0"):
        parse_dump(text, "t.txt")


def test_a_lone_cpu_without_the_extended_range_is_refused_when_it_must_have_one() -> None:
    whole = WHOLE_FIXTURE.read_text()
    text = whole[: whole.index("   0x40000000")]  # CPU 0 only, up to its standard leaves
    with pytest.raises(DumpError, match=r"every processor of this vendor or with SSE2 has it"):
        parse_dump(text, "t.txt")


def test_the_last_row_cut_short_names_its_line() -> None:
    text = WHOLE_FIXTURE.read_text()
    row = text.index("   0x80000001 0x00:")
    for cut in (row + 30, row + 60, len(text.rstrip()) - 3):
        piece = text[:cut]
        with pytest.raises(DumpError) as caught:
            parse_dump(piece, "t.txt")
        assert caught.value.line == piece.count("\n") + 1
        assert "cut short" in str(caught.value)


def test_hybrid_dump_cut_at_a_cpu_boundary_is_refused() -> None:
    """Missing whole CPUs may be the other core type: a hybrid dump must list a package."""
    text = shared_dump(ALDER_LAKE).read_text()
    cut = text[: text.index("------[ CPUID Registers / Logical CPU #12 ]------")]
    with pytest.raises(DumpError) as caught:
        parse_dump(cut, "adl.txt")
    assert "12 logical CPU(s) of a hybrid processor" in str(caught.value)
    assert "leaf 0x1f of logical CPU #0 says one package holds 20" in str(caught.value)


def test_amd_heterogeneous_dump_cut_at_a_cpu_boundary_is_refused() -> None:
    """The Zen 5 dump marked heterogeneous (CPUID 0x80000026 EAX[30], as Ryzen AI 300 parts
    report it): whole it imports, cut after 16 of its 32 CPUs it is refused."""
    text = shared_dump(ZEN5).read_text()
    marked, count = re.subn(
        r"^(CPUID 80000026: )00000001(-.*\[SL 00\])", r"\g<1>40000001\2", text, flags=re.M
    )
    assert count == 32
    assert len(parse_dump(marked, "zen5.txt").cpus) == 32
    cut = marked[: marked.index("------[ CPUID Registers / Logical CPU #16 ]------")]
    with pytest.raises(DumpError, match=r"16 logical CPU\(s\) of a hybrid processor but leaf"):
        parse_dump(cut, "zen5.txt")
    # unmarked, the same cut is a smaller machine of one core type: accepted
    plain = text[: text.index("------[ CPUID Registers / Logical CPU #16 ]------")]
    assert len(parse_dump(plain, "zen5.txt").cpus) == 16


def test_homogeneous_dump_cut_at_a_cpu_boundary_decodes_the_same_processor() -> None:
    text = shared_dump(ZEN4).read_text()
    cut = text[: text.index("------[ CPUID Registers / Logical CPU #16 ]------")]
    kept = parse_dump(cut, "zen4.txt")
    assert [cpu.index for cpu in kept.cpus] == list(range(16))
    whole = decode(parse_dump(text, "whole.txt"))
    part = decode(kept)
    assert part.features == whole.features and part.fingerprint == whole.fingerprint


# --------------------------------------------------------------------------------------------
# property: any cut either refuses or keeps every CPU's features


_VIEWS: dict[tuple[object, ...], tuple[frozenset[str], frozenset[str]]] = {}


def cpu_view(cpu: LogicalCpu) -> tuple[frozenset[str], frozenset[str]]:
    """What the decoder makes of one logical CPU on its own: features and unknown features."""
    key = (cpu.index, *sorted(cpu.leaves.items()))
    if key not in _VIEWS:
        profile = decode(RawCapture(cpus=(cpu,), source="replay:test"))
        _VIEWS[key] = (profile.features, profile.unknown_features)
    return _VIEWS[key]


@cache
def whole_cpus(path: Path) -> dict[int, LogicalCpu]:
    return {cpu.index: cpu for cpu in load_dump(path).cpus}


def cut_offsets(data: bytes) -> st.SearchStrategy[int]:
    """Any byte offset, or (as often) the end of a line: cuts between rows are the hard ones."""
    line_ends = [m.end() for m in re.finditer(rb"\n", data)]
    return st.one_of(st.integers(0, len(data)), st.sampled_from(line_ends))


def cut_refuses_or_keeps_features(path: Path, offset: int) -> None:
    data = path.read_bytes()[:offset]
    try:
        capture = parse_dump(data.decode("utf-8"), "cut")
    except DumpError as err:
        assert str(err).startswith("cut")
        return
    whole = whole_cpus(path)
    for cpu in capture.cpus:
        assert cpu.index in whole
        assert cpu_view(cpu) == cpu_view(whole[cpu.index]), (offset, cpu.index)


CUTS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CUTS
@given(st.data())
def test_any_cut_of_a_project_fixture_refuses_or_keeps_features(data: st.DataObject) -> None:
    path = data.draw(
        st.sampled_from(
            [
                WHOLE_FIXTURE,
                FIXTURES / "dumps" / "aida-sections.txt",
                FIXTURES / "dumps" / "libcpuid-multi.txt",
                DEV,
            ]
        )
    )
    cut_refuses_or_keeps_features(path, data.draw(cut_offsets(path.read_bytes())))


def _zen4_bytes() -> bytes:
    path = SHARED_DUMPS / ZEN4
    return path.read_bytes() if path.is_file() else b"\n"


@pytest.mark.skipif(not (SHARED_DUMPS / ZEN4).is_file(), reason=f"{ZEN4} not in {SHARED_DUMPS}")
@CUTS
@given(cut_offsets(_zen4_bytes()))
@example(ZEN4_CUT)
def test_any_cut_of_a_shared_dump_refuses_or_keeps_features(offset: int) -> None:
    path = shared_dump(ZEN4)
    cut_refuses_or_keeps_features(path, min(offset, path.stat().st_size))


def test_libcpuid_fixed_set_stays_unknown_not_missing(tmp_path: Path) -> None:
    """libcpuid never records 0x80000020 and up: such a dump imports, and so do its
    `probe --raw` and `probe --json` renderings, which say what recorded them."""
    path = FIXTURES / "dumps" / "libcpuid-multi.txt"
    capture = load_dump(path)
    cpu = capture.cpus[0]
    assert cpu.max_leaf(0x8000_0000) == 0x8000_0022 and cpu.get(0x8000_0021) is None
    beyond = {
        fb.name
        for fb in FEATURE_BITS
        if fb.leaf == 0x8000_0021 and (fb.vendors is None or "AuthenticAMD" in fb.vendors)
    }
    assert beyond and beyond <= decode(capture).unknown_features
    raw = run_cli("probe", "--from-dump", str(path), "--raw")
    assert raw.returncode == 0 and raw.stdout.startswith("# recorded-by: replay:libcpuid\n")
    again = tmp_path / "raw.txt"
    again.write_text(raw.stdout)
    assert [c.leaves for c in load_dump(again).cpus] == [c.leaves for c in capture.cpus]
    # the same rows as a plain `cpuid -r` file lack leaves `cpuid -r` always records
    with pytest.raises(DumpError, match=r"leaves 0x80000020-0x80000022 that its leaf 0x80000000"):
        parse_dump(raw.stdout.split("\n", 1)[1], "plain.txt")
    doc = run_cli("probe", "--from-dump", str(path), "--json")
    assert doc.returncode == 0
    as_json = tmp_path / "probe.json"
    as_json.write_text(doc.stdout)
    assert [c.leaves for c in load_dump(as_json).cpus] == [c.leaves for c in capture.cpus]
