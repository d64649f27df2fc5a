"""libcpuid raw dumps, as written by ``cpuid_tool --save`` (cpuid_serialize_raw_data).

The file is ``version=...``, then for each logical CPU an optional
``_________________ Logical CPU #N _________________`` header and lines
``name[i]=EAX EBX ECX EDX`` in hex. libcpuid records fixed-size arrays
whatever the processor supports, so the importer must undo that:

* ``basic_cpuid[i]`` is leaf i and ``ext_cpuid[i]`` leaf 0x80000000+i (subleaf
  0); entries above the maximum leaf each range reports are garbage (Intel
  repeats its highest leaf) and are dropped by the common range trimming;
* the subleaf arrays (``intel_fn4``, ``intel_fn11``, ``intel_fn12h``,
  ``intel_fn14h``, ``amd_fn8000001dh``, ``amd_fn80000026h``) are filled up to
  their fixed size: an all-zero entry other than subleaf 0 is not a real
  subleaf and is dropped (an absent leaf already decodes as zeros); an array
  the file has must hold at least its first ARRAY_MIN_ENTRIES entries, or the
  file was cut inside it.

``#`` lines are comments, and so is anything after the four values; each value
has 8 hex digits (fewer: a cut row).

Other ``name[i]=`` keys of the same shape, and the ``arm_*=`` registers of
ARM dumps, are libcpuid's too and are skipped; any other line is an error.
A line of 80 dashes ends the dump (libcpuid's test files put the expected
results after it).
"""

from __future__ import annotations

import re

from ..raw import EXTENDED_BASE, RANGE_SPAN, RawCapture, Regs
from .builder import CaptureBuilder
from .completeness import LIBCPUID
from .errors import DumpError, expected, reg32, split_lines

SOURCE = "replay:libcpuid"

RANGE_ARRAYS = {"basic_cpuid": 0, "ext_cpuid": EXTENDED_BASE}
"""Arrays indexed by leaf: leaf = base + index, subleaf 0."""

SUBLEAF_ARRAYS = {
    "intel_fn4": 0x4,
    "intel_fn11": 0xB,
    "intel_fn12h": 0x12,
    "intel_fn14h": 0x14,
    "amd_fn8000001dh": 0x8000_001D,
    "amd_fn80000026h": 0x8000_0026,
}
"""Arrays indexed by subleaf of one leaf."""

ARRAY_MIN_ENTRIES = 4
"""The smallest subleaf array any libcpuid version writes (intel_fn11 and the later ones)."""

KEY_SYNTAX = "basic_cpuid[N]=EAX EBX ECX EDX"

_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[(\d{1,10})\]\s*=(.*)$")
_VALUES = re.compile(
    r"\s*([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)\s+([0-9A-Fa-f]+)(?:\s+(\S.*))?\s*$"
)
_HEADER = re.compile(r"_{3,}\s*Logical CPU #(\d{1,9})\s*_{3,}\s*$")
_OTHER_KEY = re.compile(r"(?:version=\S*|arm_[a-z0-9_]+=\s*[0-9A-Fa-f]+)\s*$")
_END = "-" * 80


def parse_libcpuid(text: str, origin: str = "<text>") -> RawCapture:
    """Parse a libcpuid raw dump (see the module docstring for what is dropped and why)."""
    builder = CaptureBuilder(origin, SOURCE, LIBCPUID)
    seen: dict[tuple[str, int], tuple[Regs, int]] = {}

    def end_cpu() -> None:
        for name in SUBLEAF_ARRAYS:
            have = [index for (array, index) in seen if array == name]
            short = [i for i in range(ARRAY_MIN_ENTRIES) if i not in have]
            if have and short:
                last = max(line for _, line in seen.values())
                raise DumpError(
                    origin,
                    f"{name}[{short[0]}] is missing (libcpuid writes at least "
                    f"{ARRAY_MIN_ENTRIES} entries): the file is cut short or damaged; "
                    "take the dump again",
                    last,
                )
        seen.clear()

    key_match = _KEY.match
    values_match = _VALUES.match
    for number, raw_line in enumerate(split_lines(text), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        key = key_match(line)
        if key is None:
            header = _HEADER.match(line)
            if header is not None:
                end_cpu()
                builder.start_cpu(int(header[1]), number)
                continue
            if line == _END:
                break
            if _OTHER_KEY.match(line):
                continue
            raise expected(origin, number, KEY_SYNTAX, raw_line)
        name, index_text, rest = key[1], key[2], key[3]
        values = values_match(rest)
        if values is None:
            raise expected(origin, number, f"{name}[N]=EAX EBX ECX EDX", raw_line)
        base = RANGE_ARRAYS.get(name)
        leaf = SUBLEAF_ARRAYS.get(name)
        if base is None and leaf is None:
            continue  # a libcpuid array this importer does not know: not a CPUID leaf we can place
        index = int(index_text)
        if base is not None and index >= RANGE_SPAN:
            raise DumpError(origin, f"{name}[{index}]: index out of range", number)
        regs = (
            reg32(values[1], origin, number, "EAX"),
            reg32(values[2], origin, number, "EBX"),
            reg32(values[3], origin, number, "ECX"),
            reg32(values[4], origin, number, "EDX"),
        )
        previous = seen.get((name, index))
        if previous is not None and previous[0] != regs:
            raise DumpError(
                origin,
                f"{name}[{index}] given twice with different values (first on line {previous[1]})",
                number,
            )
        seen[(name, index)] = (regs, number)
        if base is not None:
            builder.add(base + index, 0, regs, number)
        else:
            assert leaf is not None
            if index > 0xFFFF_FFFF:
                raise DumpError(origin, f"{name}[{index}]: subleaf does not fit in 32 bits", number)
            if index > 0 and regs == (0, 0, 0, 0):
                continue  # fixed-size array padding, not a subleaf
            builder.add(leaf, index, regs, number)
    end_cpu()
    return builder.build()
