"""AIDA64 / InstLatx64 CPUID text dumps.

Variants seen in real files:

* ``CPUID 00000007: EAX-EBX-ECX-EDX [SL 00]`` with trailing annotations in
  brackets (``[GenuineIntel]``, ``[L1D: 48 KB]``...), under
  ``------[ CPUID Registers / Logical CPU #N ]------`` or
  ``------[ Logical CPU #N ]------`` or ``CPU#NNN AffMask: 0x...`` headers;
* the older ``CPUID Registers (CPU #N):`` header (``CPUID Registers (CPU #2
  Virtual):`` for a second thread) with no colon after the leaf and a tab
  before the registers (``CPUID 00000000  <TAB>0000...``);
* older files giving repeated leaves without ``[SL nn]`` tags.

Anything after the four registers is a comment, except a first ``[SL nn]``
(so ``[SL 00] [SL 00] [x87]`` is subleaf 0); each register has 8 hex digits,
fewer means the row was cut. Empty ``Logical CPU #N`` sections are skipped
with a warning in the capture.

Full AIDA reports carry other sections (versions, CPU info, MSR registers,
"All CPUs"...): everything outside a CPUID section is skipped, so an MSR line
is never taken for a leaf. Inside a CPUID section only leaf lines, headers and
AIDA's own notes (``allcpu:``, cache descriptions, APIC lines) are allowed;
anything else is reported, since a mangled leaf line would otherwise vanish.

Untagged repeats of a leaf are subleaves in order (0, 1, 2...; tagged lines
of the same leaf keep their tag and must agree with that order), except for
leaf 0xD: old AIDA printed subleaf 0 and then only the subleaves of the XSAVE
components that subleaf 0 announces (EDX:EAX bits 2 and up). So untagged 0xD
occurrences map to subleaf 0, then to those component numbers in ascending
order; when there is exactly one occurrence more than that, the one right
after subleaf 0 is subleaf 1 (XSAVE features) provided it looks like one.
Any other count is ambiguous and reported rather than guessed.
"""

from __future__ import annotations

import re

from ..raw import RawCapture, Regs
from .builder import CaptureBuilder
from .completeness import AIDA
from .errors import DumpError, expected, reg32, split_lines

SOURCE = "replay:aida"
XSAVE_LEAF = 0xD

_LEAF = re.compile(
    r"CPUID ([0-9A-Fa-f]{8})(?::[ \t]*|[ \t]+)"
    r"([0-9A-Fa-f]+)-([0-9A-Fa-f]+)-([0-9A-Fa-f]+)-([0-9A-Fa-f]+)"
    # then a comment: after a tag anything, without one anything but a (malformed) tag
    r"(?:[ \t]+\[SL ([0-9A-Fa-f]{1,8})\](?:[ \t]+\S.*)?|[ \t]+(?!\[SL)\S.*)?\s*$"
)
_SECTION = re.compile(r"-{2,}\[(.*)\]-{2,}$")  # on stripped lines; no nested \s* (backtracking)
_SECTION_CPU = re.compile(r"(?:CPUID Registers / )?Logical CPU #(\d{1,9})")
_AFFMASK = re.compile(r"CPU#(\d{1,9}) AffMask: 0x[0-9A-Fa-f]+\s*$")
_OLD_HEADER = re.compile(r"CPUID Registers \(CPU #(\d{1,9})(?: Virtual)?\):\s*$")
_NOTE = re.compile(r"allcpu:|L\d[ \t].*Cache:|CPU[ \t]+\d+: APICID")
_LEAF_ATTEMPT = re.compile(r"\s*cpuid\s+[0-9a-f]{4}", re.IGNORECASE)

LEAF_SYNTAX = "CPUID LLLLLLLL: EAX-EBX-ECX-EDX"

_Occurrence = tuple[int | None, Regs, int]
"""(subleaf tag or None, registers, line number) of one leaf line."""


def _plausible_xsave_subleaf1(regs: Regs) -> bool:
    """Leaf 0xD subleaf 1: feature bits 0-4 only, no user state in IA32_XSS, size 0 or >= 0x240.

    A component subleaf (size, offset) rarely passes: AVX's size 0x100 already fails.
    """
    eax, ebx, ecx, edx = regs
    return eax & ~0x1F == 0 and ecx & 0x2FF == 0 and edx == 0 and (ebx == 0 or ebx >= 0x240)


def _xsave_subleaves(occ: list[_Occurrence], origin: str) -> list[int]:
    """Subleaf numbers of untagged leaf 0xD lines, as explained in the module docstring."""
    eax0, _, _, edx0 = occ[0][1]
    mask = eax0 | edx0 << 32
    components = [bit for bit in range(2, 64) if mask >> bit & 1]
    rest = occ[1:]
    if len(rest) <= len(components):
        return [0, *components[: len(rest)]]
    if len(rest) == len(components) + 1 and _plausible_xsave_subleaf1(rest[0][1]):
        return [0, 1, *components]
    raise DumpError(
        origin,
        f"leaf 0xD is given {len(occ)} times without [SL nn] tags, but its subleaf 0 announces "
        f"{len(components)} XSAVE component(s) (mask 0x{mask:x}); cannot tell which subleaves "
        "they are",
        occ[0][2],
    )


class _AidaCpu:
    """Leaf lines of one CPU section, kept until the section ends to resolve untagged repeats."""

    def __init__(self) -> None:
        self.order: list[int] = []
        self.occurrences: dict[int, list[_Occurrence]] = {}

    def add(self, leaf: int, tag: int | None, regs: Regs, line: int) -> None:
        occ = self.occurrences.get(leaf)
        if occ is None:
            self.occurrences[leaf] = [(tag, regs, line)]
            self.order.append(leaf)
        else:
            occ.append((tag, regs, line))

    def flush(self, builder: CaptureBuilder, origin: str) -> None:
        for leaf in self.order:
            occ = self.occurrences[leaf]
            if len(occ) == 1:
                tag, regs, line = occ[0]
                builder.add(leaf, 0 if tag is None else tag, regs, line)
                continue
            untagged = [o for o in occ if o[0] is None]
            if len(untagged) > 1 and leaf == XSAVE_LEAF:
                subs = _xsave_subleaves(untagged, origin)
            else:
                subs = list(range(len(untagged)))
            for (_, regs, line), sub in zip(untagged, subs, strict=True):
                builder.add(leaf, sub, regs, line)
            for tag, regs, line in occ:
                if tag is not None:
                    builder.add(leaf, tag, regs, line)
        self.order.clear()
        self.occurrences.clear()


def parse_aida(text: str, origin: str = "<text>") -> RawCapture:
    """Parse AIDA64 / InstLatx64 text (see the module docstring for the rules)."""
    builder = CaptureBuilder(origin, SOURCE, AIDA, allow_empty=True)
    pending = _AidaCpu()
    # None: before any header; True: inside a CPUID section; False: another section
    in_cpuid: bool | None = None
    leaf_match = _LEAF.match

    def start(index: int, line: int) -> None:
        pending.flush(builder, origin)
        builder.start_cpu(index, line)

    for number, raw_line in enumerate(split_lines(text), start=1):
        if raw_line.startswith("CPUID ") or raw_line[:1].isspace():
            m = leaf_match(raw_line.lstrip())
            if m is not None:
                if in_cpuid is False:
                    continue
                in_cpuid = True
                regs = (
                    reg32(m[2], origin, number, "EAX"),
                    reg32(m[3], origin, number, "EBX"),
                    reg32(m[4], origin, number, "ECX"),
                    reg32(m[5], origin, number, "EDX"),
                )
                tag = None if m[6] is None else int(m[6], 16)
                pending.add(int(m[1], 16), tag, regs, number)
                continue
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith("--"):
            section = _SECTION.match(line)
            if section is not None:
                cpu = _SECTION_CPU.fullmatch(section[1].strip())
                if cpu is not None:
                    start(int(cpu[1]), number)
                    in_cpuid = True
                else:
                    pending.flush(builder, origin)
                    in_cpuid = False
                continue
        if line.startswith("CPU"):
            header = _AFFMASK.match(line) or _OLD_HEADER.match(line)
            if header is not None:
                start(int(header[1]), number)
                in_cpuid = True
                continue
        if in_cpuid is False:
            continue
        if in_cpuid is None and not _LEAF_ATTEMPT.match(line):
            continue  # free text before the first header or leaf
        if _NOTE.match(line):
            continue
        raise expected(origin, number, LEAF_SYNTAX, raw_line)
    pending.flush(builder, origin)
    return builder.build()
