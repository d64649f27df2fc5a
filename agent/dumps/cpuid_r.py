"""Todd Allen's ``cpuid -r`` raw output, read and written.

``CPU N:`` (``CPU:`` with ``-1``) heads each logical CPU, then one line per
call: ``   0x00000007 0x00: eax=0x... ebx=0x... ecx=0x... edx=0x...``. The
subleaf is hex too (``0x0b``). The tool probes ranges such as 0x20000000 and
0x80860000 on every processor; those and anything above a range's maximum are
dropped by the common range trimming. ``#`` lines are comments (one,
``# recorded-by: replay:libcpuid``, says which tool's leaf set a rendered
replay holds), and so is
anything after ``edx=``; each register has 8 hex digits (fewer: a cut row).

The same text is what ``probe --raw`` prints, so a capture rendered here can
be fed to any tool that reads ``cpuid -r`` output, and back to this importer.
"""

from __future__ import annotations

import re

from ..raw import RawCapture
from .builder import CaptureBuilder
from .completeness import BY_SOURCE, CPUID_R
from .errors import expected, hex32, reg32, split_lines

SOURCE = "replay:cpuid-r"

LEAF_SYNTAX = "0xLLLLLLLL 0xSS: eax=0xAAAAAAAA ebx=0xBBBBBBBB ecx=0xCCCCCCCC edx=0xDDDDDDDD"

_LEAF = re.compile(
    r"\s*0x([0-9A-Fa-f]+)(?:\s+0x([0-9A-Fa-f]+))?:\s*"
    r"eax=0x([0-9A-Fa-f]+)\s+ebx=0x([0-9A-Fa-f]+)\s+ecx=0x([0-9A-Fa-f]+)\s+edx=0x([0-9A-Fa-f]+)"
    r"(?:[ \t]+\S.*)?\s*$"  # a comment
)
_HEADER = re.compile(r"\s*CPU(?:\s+(\d{1,9}))?:\s*$")
_RECORDED_BY = re.compile(r"#\s*recorded-by:\s*(\S+)\s*$")
"""The first line :func:`render_cpuid_r` writes for a replayed capture."""


def parse_cpuid_r(text: str, origin: str = "<text>") -> RawCapture:
    """Parse ``cpuid -r`` output; a missing subleaf field (very old versions) means subleaf 0."""
    builder = CaptureBuilder(origin, SOURCE, CPUID_R)
    leaf_match = _LEAF.match
    for number, line in enumerate(split_lines(text), start=1):
        m = leaf_match(line)
        if m is not None:
            builder.add(
                hex32(m[1], origin, number, "leaf"),
                0 if m[2] is None else hex32(m[2], origin, number, "subleaf"),
                (
                    reg32(m[3], origin, number, "eax"),
                    reg32(m[4], origin, number, "ebx"),
                    reg32(m[5], origin, number, "ecx"),
                    reg32(m[6], origin, number, "edx"),
                ),
                number,
            )
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            recorded = _RECORDED_BY.match(line.strip())
            if recorded is not None and recorded[1] in BY_SOURCE:
                builder.recording = BY_SOURCE[recorded[1]]
            continue
        header = _HEADER.match(line)
        if header is not None:
            builder.start_cpu(None if header[1] is None else int(header[1]), number)
            continue
        raise expected(origin, number, LEAF_SYNTAX, line)
    return builder.build()


def render_cpuid_r(capture: RawCapture) -> str:
    """The capture as ``cpuid -r`` prints it: one ``CPU N:`` block per logical CPU.

    A capture replayed from libcpuid starts with ``# recorded-by: replay:libcpuid``, so
    the importer holds it to what that format records (libcpuid lacks leaves above
    its fixed arrays; they are unknown, not missing).
    """
    out: list[str] = []
    recording = BY_SOURCE.get(capture.source)
    if recording is not None and recording.records_less:
        out.append(f"# recorded-by: {capture.source}")
    for cpu in capture.cpus:
        out.append(f"CPU {cpu.index}:")
        out.extend(
            f"   0x{leaf:08x} 0x{sub:02x}: eax=0x{a:08x} ebx=0x{b:08x} ecx=0x{c:08x} edx=0x{d:08x}"
            for (leaf, sub), (a, b, c, d) in cpu.sorted_leaves()
        )
    return "\n".join(out) + "\n" if out else ""
