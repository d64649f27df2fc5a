"""Real-world dump layouts import: old AIDA64 headers, empty and repeated CPU sections,
repeated tags, comments, CRLF and a UTF-8 BOM (tests/fixtures/dumps, see their headers).

Each fixture is compared with a plain version of itself (the edit undone by a regex
or string operation here), or with the shared dump it was cut from when that is
present, so the tests say "the layout changes nothing", not "the parser says X".
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import pytest

from cpucompat.agent.dumps import DumpError, detect_format, load_dump, parse_dump
from cpucompat.agent.raw import RawCapture
from tests.support.daemons import run_cli
from tests.support.paths import FIXTURES, SHARED_DUMPS

DUMPS = FIXTURES / "dumps"
SHARED_AIDA_K10 = "amd-k10-amd-athlon-ii-x4-620-processor.txt"


def fixture(name: str) -> Path:
    return DUMPS / name


def leaves(capture: RawCapture) -> list[tuple[int, dict[tuple[int, int], tuple[int, ...]]]]:
    return [(cpu.index, dict(cpu.leaves)) for cpu in capture.cpus]


def test_old_aida_virtual_header() -> None:
    """`CPUID Registers (CPU #2 Virtual):` heads a CPU like `CPUID Registers (CPU #2):`."""
    text = fixture("aida-old-virtual.txt").read_text()
    assert detect_format(text) == "aida"
    capture = parse_dump(text, "v.txt")
    assert [cpu.index for cpu in capture.cpus] == [1, 2]
    plain = parse_dump(text.replace("(CPU #2 Virtual):", "(CPU #2):"), "v.txt")
    assert leaves(capture) == leaves(plain)
    assert capture.warnings == ()
    shared = SHARED_DUMPS / SHARED_AIDA_K10
    if shared.is_file():
        whole = load_dump(shared)
        assert leaves(capture) == leaves(whole)[:2]


def test_tab_rows_read_like_colon_rows() -> None:
    text = fixture("aida-old-virtual.txt").read_text()
    colon = re.sub(r"^(CPUID [0-9A-F]{8})  \t", r"\1: ", text, flags=re.MULTILINE)
    assert colon != text
    assert leaves(parse_dump(colon, "c.txt")) == leaves(parse_dump(text, "t.txt"))


def test_empty_sections_are_skipped_and_said(tmp_path: Path) -> None:
    path = fixture("aida-empty-sections.txt")
    capture = load_dump(path)
    assert [cpu.index for cpu in capture.cpus] == [0, 2]
    lines = path.read_text().splitlines()
    empty = {
        int(m[1]): n
        for n, line in enumerate(lines, 1)
        if (m := re.fullmatch(r"-+\[ Logical CPU #(\d+) \]-+", line))
        and (n == len(lines) or not lines[n].startswith("CPUID"))
    }
    assert sorted(empty) == [1, 3]
    assert capture.warnings == tuple(
        f"logical CPU #{cpu}: empty section on line {line} skipped; its leaves are unknown"
        for cpu, line in sorted(empty.items())
    )
    # the warnings reach the profile a user reads, as text and as JSON
    shown = run_cli("probe", "--from-dump", str(path))
    assert shown.returncode == 0, shown.stderr
    assert "empty section on line" in shown.stdout
    doc = json.loads(run_cli("probe", "--from-dump", str(path), "--json").stdout)
    assert doc["warnings"] == list(capture.warnings)
    assert doc["logical_cpus"] == 2
    # and survive a round trip through the project's JSON
    again = tmp_path / "again.json"
    again.write_text(json.dumps(doc))
    assert load_dump(again).warnings == capture.warnings


def test_cpu_given_twice_identical_is_kept_once() -> None:
    path = fixture("aida-cpu-twice.txt")
    text = path.read_text()
    capture = load_dump(path)
    assert [cpu.index for cpu in capture.cpus] == [0]
    header = "------[ Logical CPU #0 ]------"
    _, second = [n for n, line in enumerate(text.splitlines(), 1) if line == header]
    once = text[: text.rindex(header)]
    assert leaves(capture) == leaves(parse_dump(once, "once.txt"))
    assert capture.warnings == (
        f"logical CPU #0 is given again on line {second} with the same leaves; kept once",
    )


def test_cpu_given_twice_different_is_refused(tmp_path: Path) -> None:
    text = fixture("aida-cpu-twice.txt").read_text()
    header = "------[ Logical CPU #0 ]------"
    cut = text.rindex(header)
    changed = text[:cut] + text[cut:].replace("00010676-", "00010677-", 1)
    path = tmp_path / "twice.txt"
    path.write_text(changed)
    second = text[:cut].count("\n") + 1
    first = text.splitlines().index(header) + 1
    with pytest.raises(DumpError) as caught:
        load_dump(path)
    assert str(caught.value) == (
        f"{path}:{second}: logical CPU #0 is given twice with different leaves "
        f"(first on line {first})"
    )
    result = run_cli("probe", "--from-dump", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "logical CPU #0" in result.stderr


def test_repeated_tags_are_comments() -> None:
    text = fixture("aida-repeated-tags.txt").read_text()
    assert "[SL 00] [SL 00]" in text
    plain = re.sub(r"(\[SL [0-9A-F]{2}\]) \1", r"\1", text)
    assert plain != text
    assert leaves(parse_dump(text, "r.txt")) == leaves(parse_dump(plain, "p.txt"))


def _uncommented(text: str) -> str:
    """The text with `#` lines and `# ...` row comments removed, LF endings, no BOM."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    rows = [re.sub(r"\s+# .*$", "", row) for row in text.split("\n") if not row.startswith("#")]
    return "\n".join(rows)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("cpuid-r-comments-crlf-bom.txt", "cpuid-r"), ("libcpuid-comments-crlf.txt", "libcpuid")],
)
def test_comment_lines_crlf_and_bom(name: str, kind: str) -> None:
    path = fixture(name)
    data = path.read_bytes()
    assert b"\r\n" in data and re.search(rb"^#", data, re.MULTILINE)
    text = data.decode("utf-8")
    assert detect_format(text) == kind
    plain = _uncommented(text)
    assert not re.search(r"^#|\s# ", plain, re.M) and "\r" not in plain and "\ufeff" not in plain
    capture = load_dump(path)
    assert leaves(capture) == leaves(parse_dump(plain, "plain"))
    assert leaves(parse_dump(text, "with-bom")) == leaves(capture)


EVERY_LAYOUT = [
    "aida-sections.txt",
    "aida-affmask.txt",
    "aida-old-colon.txt",
    "aida-tab.txt",
    "aida-old-virtual.txt",
    "aida-empty-sections.txt",
    "aida-repeated-tags.txt",
    "libcpuid-multi.txt",
    "libcpuid-single.txt",
    "cpuid-r-two-cpus.txt",
    "cpuid-r-single.txt",
    "capture.json",
]


@pytest.mark.parametrize("name", EVERY_LAYOUT)
def test_crlf_and_bom_in_every_format(tmp_path: Path, name: str) -> None:
    want = load_dump(fixture(name))
    text = fixture(name).read_text()
    path = tmp_path / name
    path.write_bytes(codecs.BOM_UTF8 + text.replace("\n", "\r\n").encode())
    got = load_dump(path)
    assert leaves(got) == leaves(want)
    assert leaves(parse_dump("\ufeff" + text.replace("\n", "\r\n"), "t")) == leaves(want)


_ROW_END = {
    "aida": re.compile(r"^(\s*CPUID [0-9A-F]{8}[:\s]+(?:[0-9A-F]{8}-){3}[0-9A-F]{8}.*?)\s*$", re.M),
    "libcpuid": re.compile(r"^(\w+\[\d+\]=(?:[0-9a-f]{8} ){3}[0-9a-f]{8})\s*$", re.M),
    "cpuid-r": re.compile(r"^(\s*0x[0-9a-f]{8} 0x[0-9a-f]{2}: .*edx=0x[0-9a-f]{8})\s*$", re.M),
}
"""A whole leaf row (after AIDA64's tag, if any), to append a comment to."""


@pytest.mark.parametrize("name", [n for n in EVERY_LAYOUT if not n.endswith(".json")])
def test_anything_after_the_registers_is_a_comment(name: str) -> None:
    text = fixture(name).read_text()
    kind = detect_format(text)
    assert kind is not None
    noted, count = _ROW_END[kind].subn(r"\1 [note] 0000 eax=0x1 trailing words", text)
    assert count >= 8
    assert leaves(parse_dump(noted, "n")) == leaves(parse_dump(text, "t"))


def test_a_malformed_first_tag_is_no_comment() -> None:
    """Only a well-formed [SL nn] may follow the registers as a tag; a broken one is an error."""
    text = fixture("aida-repeated-tags.txt").read_text().replace("[SL 01] [SL 01]", "[SL 0x]", 1)
    with pytest.raises(DumpError, match=r"expected 'CPUID LLLLLLLL: EAX-EBX-ECX-EDX'"):
        parse_dump(text, "t")
