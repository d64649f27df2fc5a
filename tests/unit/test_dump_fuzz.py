"""Property tests: the importers never fail with anything but DumpError, and round trips hold.

Random text alone rarely gets past format detection, so most strategies build
texts from fragments of each format (headers, leaf lines with hex fields of
random width, tags, notes, junk) to reach deep into every parser.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Sequence
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpucompat.agent.dumps import DumpError, parse_dump, render_cpuid_r
from cpucompat.agent.dumps.detect import decode_dump
from cpucompat.agent.raw import LeafKey, LogicalCpu, RawCapture, Regs, trim_to_reported_ranges
from tests.support.paths import DUMPS

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_dump_error(text: str) -> RawCapture | None:
    """Parse; a DumpError is an accepted outcome, any other exception fails the test."""
    try:
        capture = parse_dump(text, "fuzz.txt")
    except DumpError as err:
        assert str(err).startswith("fuzz.txt")
        return None
    assert capture.cpus
    assert capture.source.startswith("replay:")
    for cpu in capture.cpus:
        assert (0, 0) in cpu.leaves
        assert cpu.xcr0 is None or capture.source == "replay:json"  # only our JSON records XCR0
        for (leaf, sub), regs in cpu.leaves.items():
            assert 0 <= leaf <= 0xFFFF_FFFF and 0 <= sub <= 0xFFFF_FFFF
            assert len(regs) == 4 and all(0 <= r <= 0xFFFF_FFFF for r in regs)
    return capture


# --------------------------------------------------------------------------------------------
# building blocks
#
# Fragment texts are decoded from one byte string: each 16-byte chunk picks a line template
# and fills its fields. Hypothesis draws and shrinks one blob far faster than the dozens of
# separate draws per line a composite strategy needs, so 200 examples stay well under a second.

T = TypeVar("T")
LINE_CHUNK = 16
SOME_LEAVES = [
    0,
    1,
    4,
    7,
    0xB,
    0xD,
    0x14,
    0x8000_0000,
    0x8000_001D,
    0x8FFF_FFFF,
    0x4000_0000,
    0xC000_0000,
]
BROKEN_HEX = ["", "Z", "0x1", "-", " 1", "G0000000", "000000000"]
junk = st.text(alphabet=string.printable + "\x00\u00b5\u2028", max_size=40)


def _u32(chunk: bytes, at: int) -> int:
    return int.from_bytes(chunk[at : at + 4], "little")


def _pick(options: Sequence[T], byte: int, broken: Sequence[T] | None = None) -> T:
    """One of ``options``, or of ``options + broken`` when ``broken`` is given."""
    pool = list(options) if broken is None else [*options, *broken]
    return pool[byte % len(pool)]


class Line:
    """Decodes one text line from a chunk; ``clean`` texts keep every field well formed."""

    def __init__(self, chunk: bytes, clean: bool) -> None:
        self.c = chunk
        self.clean = clean

    def maybe(self, broken: list[str]) -> list[str] | None:
        return None if self.clean else broken

    def hex(self, at: int, upper: bool = True) -> str:
        """A hex field of c[at:at+5]: well formed, or (unless clean) short, too wide or broken."""
        mode, value = self.c[at] % 10, _u32(self.c, at + 1)
        if mode < 6 or self.clean:
            text = f"{value:08x}"
        elif mode == 6:
            text = f"{value:x}"
        elif mode == 7:
            text = f"1{value:08x}"
        else:
            return BROKEN_HEX[value % len(BROKEN_HEX)]
        return text.upper() if upper else text

    def leaf(self, at: int, upper: bool = True) -> str:
        if self.c[at] & 0x80:
            return self.hex(at, upper)
        text = f"{SOME_LEAVES[self.c[at] % len(SOME_LEAVES)]:08x}"
        return text.upper() if upper else text

    def cpu(self, at: int) -> str:
        return _pick(["0", "1", "2", "3", "007"], self.c[at], self.maybe(["", "x", "99999999999"]))


AIDA_LEAF0 = "\nCPUID 00000000: 00000016-756E6547-6C65746E-49656E69 [GenuineIntel]"


def _aida_line(line: Line) -> str:
    c = line.c
    kind = c[0] % 12
    if kind < 6:
        count = 4 if line.clean else 3 + c[12] % 3
        regs = "-".join(line.hex(2 + (i % 2) * 5) for i in range(count))
        sep = _pick([": ", ":", "  \t", " ", ":\t"], c[13], line.maybe([": : "]))
        tag = _pick(["", "", " [SL 00]", " [SL 01]", " [SL 0C]"], c[14], line.maybe([" [SL ZZ]"]))
        note = _pick(["", "", " [GenuineIntel]", " [L1D: 48 KB]", " [120 / 0]", " ", " ["], c[15])
        return f"CPUID {line.leaf(7)}{sep}{regs}{tag}{note}"
    leaf0 = AIDA_LEAF0 if line.clean else ""
    return [
        f"------[ CPUID Registers / Logical CPU #{line.cpu(1)} ]------{leaf0}",
        f"------[ Logical CPU #{line.cpu(1)} ]------{leaf0}",
        f"------[ MSR Registers / Logical CPU #{line.cpu(1)} ]------",
        f"CPU#{line.cpu(1)} AffMask: 0x0000000000000001 {leaf0}",
        f"CPUID Registers (CPU #{line.cpu(1)}):{leaf0}",
        _pick(
            [
                "------[ All CPUs ]------",
                "------[ Versions ]------",
                "allcpu: Package 0 / Core 0 / Thread 0: Valid",
                "CPU   0: APICID    0 / Package 0 / Core   0 / Thread 0: Valid",
                "L1    Data Cache:    32 KB,  8-way Associative, 64-byte Line",
                "MSR 0000001B: 0000-0000-FEE0-0900",
                "",
            ],
            c[2],
            line.maybe(["CPUID Manufacturer: GenuineIntel"]),
        ),
    ][kind - 6]


LIBCPUID_NAMES = [
    "basic_cpuid",
    "ext_cpuid",
    "intel_fn4",
    "intel_fn11",
    "intel_fn12h",
    "intel_fn14h",
    "amd_fn8000001dh",
    "amd_fn80000026h",
    "intel_fn99h",
]
LIBCPUID_LEAF0 = "\nbasic_cpuid[0]=0000000d 756e6547 6c65746e 49656e69"


def _libcpuid_line(line: Line) -> str:
    c = line.c
    kind = c[0] % 8
    if kind < 6:
        index = _pick([str(c[1] % 40)], c[2], line.maybe(["-1", "", "1x", "99999999999"]))
        count = 4 if line.clean else c[13] % 6
        values = " ".join(line.hex(3 + (i % 2) * 5, upper=False) for i in range(count))
        name = _pick(LIBCPUID_NAMES, c[14], line.maybe(["Basic_cpuid", "x"]))
        return f"{name}[{index}]={values}"
    if kind == 6:
        leaf0 = LIBCPUID_LEAF0 if line.clean else ""
        return f"_________________ Logical CPU #{line.cpu(1)} _________________{leaf0}"
    return _pick(
        ["version=0.7.0", "arm_midr=00000000410fd083", "", "  "], c[1], line.maybe(["-" * 80])
    )


CPUID_R_LEAF0 = "\n   0x00000000 0x00: eax=0x0000000d ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69"


def _cpuid_r_line(line: Line) -> str:
    c = line.c
    kind = c[0] % 6
    if kind < 4:
        sub = f"{c[1] % 20:02x}" if c[2] & 1 or line.clean else line.hex(1, upper=False)
        regs = [line.hex(6 + (i % 2) * 5, upper=False) for i in range(4)]
        return (
            f"   0x{line.leaf(11, upper=False)} 0x{sub}: "
            f"eax=0x{regs[0]} ebx=0x{regs[1]} ecx=0x{regs[2]} edx=0x{regs[3]}"
        )
    leaf0 = CPUID_R_LEAF0 if line.clean else ""
    if kind == 4:
        return f"CPU {line.cpu(1)}:{leaf0}"
    return _pick(["CPU:" + leaf0, ""], c[1], line.maybe(["cpuid version 20230120"]))


def fragments(decode: Callable[[Line], str]) -> st.SearchStrategy[str]:
    """Up to 25 template lines with mixed line endings; half the texts keep every field well
    formed (so parsing gets to the end), the others carry broken fields and a junk line."""
    ends = ["\n", "\n", "\n", "\r\n", "\r"]

    def build(blob: bytes, noise: str, where: int) -> str:
        clean = blob[:1] < b"\x80"
        chunks = [
            blob[at : at + LINE_CHUNK].ljust(LINE_CHUNK, b"\0")
            for at in range(1, len(blob), LINE_CHUNK)
        ]
        lines = [decode(Line(c, clean)) + ends[c[-1] % len(ends)] for c in chunks]
        if noise and not clean:
            lines.insert(where % (len(lines) + 1), noise + "\n")
        return "".join(lines)

    return st.builds(
        build,
        st.binary(max_size=1 + 25 * LINE_CHUNK),
        st.one_of(st.just(""), junk),
        st.integers(0, 30),
    )


JSON_ODD_VALUES: list[object] = [None, True, -1, 2**70, "", "0x", "0xZZ", [], {}, 1.5]


def _json_value(line: Line, at: int) -> object:
    """A leaf field: a hex string, or (unless clean) sometimes any other JSON value."""
    if line.clean or line.c[at] % 10 < 8:
        return "0x" + line.hex(at, upper=False)
    return JSON_ODD_VALUES[line.c[at + 1] % len(JSON_ODD_VALUES)]


def _json_doc(head: bytes, cpus: list[bytes]) -> dict[str, object]:
    """A cpucompat-raw document decoded from bytes; half of them are well formed."""
    head = head.ljust(4, b"\0")
    clean = head[3] < 0x80
    odd = None if clean else [2, "1", None]
    doc: dict[str, object] = {
        "format": _pick(["cpucompat-raw"], head[0], None if clean else ["other"]),
        "version": _pick([1], head[1], odd),
        "source": _pick(["cpuid-instruction", "devcpu", None, 7], head[2]),
    }
    entries = []
    for n, blob in enumerate(cpus):
        rows: list[list[object]] = [["0x0", "0x0", "0xd", "0x756e6547", "0x6c65746e", "0x49656e69"]]
        for at in range(0, len(blob) - 31, 32):
            line = Line(blob[at : at + 32], clean)
            width = 6 if clean else 5 + line.c[31] % 3
            rows.append([_json_value(line, 5 * i) for i in range(width)])
        tail = blob[-3:].ljust(3, b"\0")
        entries.append(
            {
                "cpu": _pick([n], tail[0], None if clean else [0, -1, "1", None]),
                "xcr0": _pick(["0x207", None], tail[1], None if clean else ["0x", 5]),
                "leaves": rows,
            }
        )
    doc["cpus"] = entries
    return doc


json_doc = st.builds(
    _json_doc, st.binary(max_size=4), st.lists(st.binary(max_size=6 * 32), max_size=3)
)


# --------------------------------------------------------------------------------------------
# never anything but DumpError


@FUZZ
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    parse_or_dump_error(text)


@FUZZ
@given(st.binary())
def test_arbitrary_bytes(data: bytes) -> None:
    try:
        text = decode_dump(data, "fuzz.txt")
    except DumpError:
        return
    parse_or_dump_error(text)


@FUZZ
@given(fragments(_aida_line))
def test_aida_fragments(text: str) -> None:
    parse_or_dump_error(
        "------[ CPUID Registers / Logical CPU #0 ]------" + AIDA_LEAF0 + "\n" + text
    )


@FUZZ
@given(fragments(_aida_line))
def test_aida_fragments_without_header(text: str) -> None:
    parse_or_dump_error("CPUID 00000000: 00000001-756E6547-6C65746E-49656E69\n" + text)


@FUZZ
@given(fragments(_libcpuid_line))
def test_libcpuid_fragments(text: str) -> None:
    parse_or_dump_error("basic_cpuid[0]=0000000d 756e6547 6c65746e 49656e69\n" + text)


@FUZZ
@given(fragments(_cpuid_r_line))
def test_cpuid_r_fragments(text: str) -> None:
    parse_or_dump_error("CPU 0:" + CPUID_R_LEAF0 + "\n" + text)


@FUZZ
@given(json_doc)
def test_json_documents(doc: dict[str, object]) -> None:
    parse_or_dump_error(json.dumps(doc))


VALID_JSON = (DUMPS / "capture.json").read_text()


@FUZZ
@given(st.integers(0, len(VALID_JSON)), st.integers(0, 8), junk)
def test_json_text_mutations(at: int, cut: int, noise: str) -> None:
    parse_or_dump_error(VALID_JSON[:at] + noise + VALID_JSON[at + cut :])


# --------------------------------------------------------------------------------------------
# round trips

# Round-trip inputs are decoded from one byte string per CPU: Hypothesis draws (and
# shrinks) a blob far faster than dozens of separate integers.
_RANGES = (
    (1, 0x28),
    (0x4000_0001, 0x30),
    (0x8000_0001, 0x30),
    (0xC000_0001, 0x8),
    (0, 0x1_0000_0000),
)
_CHUNK = 24


def _regs(chunk: bytes) -> Regs:
    return (
        int.from_bytes(chunk[0:4], "little"),
        int.from_bytes(chunk[4:8], "little"),
        int.from_bytes(chunk[8:12], "little"),
        int.from_bytes(chunk[12:16], "little"),
    )


INTEL_HYBRID = (0x7, 0, 3, 1 << 15)
AMD_HETEROGENEOUS = (0x8000_0026, None, 0, 1 << 30)


def complete(leaves: dict[LeafKey, Regs], limit: int = 0xFF) -> dict[LeafKey, Regs]:
    """The leaves as a whole dump holds them: every leaf leaves 0 and 0x80000000 declare
    (zeros where the draw had none, at most ``limit`` above each base), and no hybrid flag
    (a hybrid dump is held to its topology's CPU count)."""
    out = dict(leaves)
    out.setdefault((0x8000_0000, 0), (0x8000_0000, 0, 0, 0))
    for base in (0, 0x8000_0000):
        top = out[(base, 0)][0]
        if base and not base <= top < base + 0x100:
            continue
        for leaf in range(base + 1, min(top, base + limit) + 1):
            out.setdefault((leaf, 0), (0, 0, 0, 0))
    for leaf, sub, reg, bit in (INTEL_HYBRID, AMD_HETEROGENEOUS):
        for key, regs in list(out.items()):
            if key[0] == leaf and (sub is None or key[1] == sub) and regs[reg] & bit:
                cleared = list(regs)
                cleared[reg] &= ~bit
                out[key] = (cleared[0], cleared[1], cleared[2], cleared[3])
    return out


def _decode_cpu(blob: bytes) -> dict[LeafKey, Regs]:
    """Leaf 0 plus random leaves, some of them outside the ranges the CPU reports."""
    head = blob[:_CHUNK].ljust(_CHUNK, b"\0")
    leaves: dict[LeafKey, Regs] = {(0, 0): (head[0] % 0x25, *_regs(head[8:])[1:])}
    for bit, base in enumerate((0x4000_0000, 0x8000_0000, 0xC000_0000)):
        if head[1] >> bit & 1:
            leaves[(base, 0)] = (base + head[2 + bit] % 0x31, *_regs(head[8:])[:3])
    for at in range(_CHUNK, len(blob) - _CHUNK + 1, _CHUNK):
        chunk = blob[at : at + _CHUNK]
        first, span = _RANGES[chunk[0] % len(_RANGES)]
        leaf = first + int.from_bytes(chunk[1:5], "little") % span
        sub = chunk[5] % 0x40 if chunk[6] & 1 else int.from_bytes(chunk[5:9], "little")
        leaves[(leaf, sub)] = (0, 0, 0, 0) if chunk[7] & 1 else _regs(chunk[8:])
    return complete(leaves)


@st.composite
def captures(draw: st.DrawFn) -> RawCapture:
    """One to three CPUs with distinct numbers in any order (files need not start at 0)."""
    blobs = draw(st.lists(st.binary(max_size=13 * _CHUNK), min_size=1, max_size=3))
    numbers = draw(st.permutations([0, 1, 2, 7, 255, 300]))
    return RawCapture(
        cpus=tuple(
            LogicalCpu(index=n, leaves=_decode_cpu(blob))
            for n, blob in zip(numbers, blobs, strict=False)
        ),
        source="cpuid-instruction",
    )


def same_leaves(got: RawCapture, want: list[tuple[int, dict[LeafKey, Regs]]]) -> None:
    assert [(cpu.index, dict(cpu.leaves)) for cpu in got.cpus] == want


@FUZZ
@given(captures())
def test_cpuid_r_round_trip(capture: RawCapture) -> None:
    parsed = parse_dump(render_cpuid_r(capture), "rendered")
    assert parsed.source == "replay:cpuid-r"
    same_leaves(parsed, [(c.index, trim_to_reported_ranges(c.leaves)) for c in capture.cpus])
    assert render_cpuid_r(parsed) == render_cpuid_r(
        RawCapture(
            cpus=tuple(
                LogicalCpu(index=c.index, leaves=trim_to_reported_ranges(c.leaves))
                for c in capture.cpus
            ),
            source="x",
        )
    )


def render_aida(capture: RawCapture) -> str:
    """AIDA64's current layout: every line tagged, annotations after the tag."""
    out = []
    for cpu in capture.cpus:
        out.append(f"------[ CPUID Registers / Logical CPU #{cpu.index} ]------")
        out.append("")
        for (leaf, sub), regs in cpu.sorted_leaves():
            body = "-".join(f"{r:08X}" for r in regs)
            out.append(f"CPUID {leaf:08X}: {body} [SL {sub:02X}] [note]")
        out.append("")
        out.append(f"------[ MSR Registers / Logical CPU #{cpu.index} ]------")
        out.append("CPUID 00000000: 00000000-00000000-00000000-00000000")
    return "\n".join(out)


@FUZZ
@given(captures())
def test_aida_round_trip(capture: RawCapture) -> None:
    parsed = parse_dump(render_aida(capture), "rendered")
    assert parsed.source == "replay:aida"
    same_leaves(parsed, [(c.index, trim_to_reported_ranges(c.leaves)) for c in capture.cpus])


LIBCPUID_SUBLEAF_ARRAYS = {
    4: "intel_fn4",
    0xB: "intel_fn11",
    0x12: "intel_fn12h",
    0x14: "intel_fn14h",
    0x8000_001D: "amd_fn8000001dh",
    0x8000_0026: "amd_fn80000026h",
}


@st.composite
def libcpuid_capture(draw: st.DrawFn) -> RawCapture:
    """Captures libcpuid can hold: leaves 0-31 and 0x80000000-31, plus its subleaf arrays
    (each with the 4 entries libcpuid always writes)."""
    arrays = sorted(LIBCPUID_SUBLEAF_ARRAYS)
    cpus = []
    for index, blob in enumerate(
        draw(st.lists(st.binary(max_size=13 * _CHUNK), min_size=1, max_size=3))
    ):
        head = blob[:2].ljust(2, b"\0")
        leaves: dict[LeafKey, Regs] = {(0, 0): (head[0] % 0x21, 1, 2, 3)}
        if head[1] & 1:
            leaves[(0x8000_0000, 0)] = (0x8000_0000 + head[1] % 0x29, 0, 0, 0)
        for at in range(2, len(blob) - _CHUNK + 1, _CHUNK):
            chunk = blob[at : at + _CHUNK]
            kind = chunk[0] % 3
            if kind == 0:
                key = (1 + chunk[1] % 31, 0)
            elif kind == 1:
                key = (0x8000_0001 + chunk[1] % 31, 0)
            else:
                key = (arrays[chunk[1] % len(arrays)], chunk[2] % 8)
            leaves[key] = (0, 0, 0, 0) if chunk[3] & 1 else _regs(chunk[8:])
        leaves = complete(leaves, limit=0x1F)
        for leaf in {leaf for leaf, _ in leaves if leaf in LIBCPUID_SUBLEAF_ARRAYS}:
            for sub in range(4):  # libcpuid writes at least 4 entries of each array
                leaves.setdefault((leaf, sub), (0, 0, 0, 0))
        cpus.append(LogicalCpu(index=index, leaves=leaves))
    return RawCapture(cpus=tuple(cpus), source="x")


def render_libcpuid(capture: RawCapture) -> str:
    out = ["version=0.7.0"]
    for cpu in capture.cpus:
        out.append(f"_________________ Logical CPU #{cpu.index} _________________")
        for (leaf, sub), regs in cpu.sorted_leaves():
            body = " ".join(f"{r:08x}" for r in regs)
            if leaf in LIBCPUID_SUBLEAF_ARRAYS:
                out.append(f"{LIBCPUID_SUBLEAF_ARRAYS[leaf]}[{sub}]={body}")
            if sub == 0 and leaf < 0x20:
                out.append(f"basic_cpuid[{leaf}]={body}")
            elif sub == 0 and 0x8000_0000 <= leaf < 0x8000_0020:
                out.append(f"ext_cpuid[{leaf - 0x8000_0000}]={body}")
    return "\n".join(out) + "\n"


@FUZZ
@given(libcpuid_capture())
def test_libcpuid_round_trip(capture: RawCapture) -> None:
    parsed = parse_dump(render_libcpuid(capture), "rendered")
    assert parsed.source == "replay:libcpuid"
    want = []
    for cpu in capture.cpus:
        kept = {
            key: regs
            for key, regs in cpu.leaves.items()
            if key[1] == 0 or regs != (0, 0, 0, 0)  # zero padding of the subleaf arrays goes
        }
        want.append((cpu.index, trim_to_reported_ranges(kept)))
    same_leaves(parsed, want)
