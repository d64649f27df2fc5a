"""Import CPUID dumps taken by other tools (or by this project) as a RawCapture.

``load_dump`` / ``parse_dump`` detect the format, so `probe --from-dump`
takes whatever file a user has: AIDA64/InstLatx64 text, libcpuid's
``cpuid_tool --save``, ``cpuid -r`` output or the project's own JSON. Every
importer yields the same shape: one LogicalCpu per logical CPU of the file,
leaves outside the ranges the processor reports dropped, xcr0 unknown except in
the project's own JSON (other dumps say nothing reliable about the OS state of
the machine they came from), and
any defect reported as :class:`DumpError` with file and line. A file cut short is
refused, never decoded into a smaller processor: every CPU must hold the leaves
its own leaf 0 and 0x80000000 declare, as far as its tool records them
(:mod:`.completeness`). What an importer skipped (an empty AIDA64 section, a CPU
given twice with the same leaves) is kept in the capture's ``warnings``.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

from ..decode import decode
from ..profile import Profile
from ..raw import RawCapture, RawDataError, validate_capture
from ..rawjson import capture_from_json
from .aida import parse_aida
from .builder import CaptureBuilder
from .completeness import BY_SOURCE, JSON
from .cpuid_r import parse_cpuid_r, render_cpuid_r
from .detect import (
    MAX_DUMP_BYTES,
    NOT_A_DUMP,
    check_text,
    decode_dump,
    detect_format,
    read_dump_bytes,
)
from .errors import DumpError, split_lines
from .libcpuid import parse_libcpuid

__all__ = [
    "MAX_DUMP_BYTES",
    "SOURCE_JSON",
    "DumpError",
    "detect_format",
    "load_dump",
    "load_dump_profile",
    "load_valid_dump",
    "parse_dump",
    "render_cpuid_r",
]

SOURCE_JSON = "replay:json"


def load_dump(path: str | os.PathLike[str]) -> RawCapture:
    """Read and parse a dump file of any supported format; origin is the path as given."""
    origin = os.fspath(path)
    text = decode_dump(read_dump_bytes(path, origin), origin)
    return parse_dump(text, origin)


def load_valid_dump(path: str | os.PathLike[str]) -> RawCapture:
    """A dump file read, parsed and held to what a processor can return (`validate_capture`).

    Every command that takes a dump file reads it through here (or
    `load_dump_profile`), so each refuses the same files with the same
    :class:`DumpError` naming the file.
    """
    capture = load_dump(path)
    try:
        validate_capture(capture)
    except DumpError:
        raise
    except RawDataError as err:
        raise DumpError(os.fspath(path), str(err)) from None
    return capture


def load_dump_profile(path: str | os.PathLike[str]) -> Profile:
    """A dump file read, validated and decoded (the capture is the profile's ``raw``)."""
    capture = load_valid_dump(path)
    try:
        return decode(capture)
    except DumpError:
        raise
    except RawDataError as err:
        raise DumpError(os.fspath(path), str(err)) from None


def parse_dump(text: str, origin: str = "<text>") -> RawCapture:
    """Parse dump text of any supported format (see :func:`detect_format`).

    A UTF-8 BOM is dropped and any line ending is accepted. An error on the last
    line of a text that does not end with a line break says the file ends inside
    that row: the usual sign of a dump cut short.
    """
    text = text.removeprefix("\ufeff")
    check_text(text, origin)
    try:
        return _parse(text, origin)
    except DumpError as err:
        if (
            text.endswith(("\n", "\r"))
            or err.line != len(split_lines(text))
            or "cut short" in err.detail
        ):
            raise
        raise DumpError(
            origin, f"{err.detail} (the file ends inside this row: cut short?)", err.line
        ) from None


def _parse(text: str, origin: str) -> RawCapture:
    kind = detect_format(text)
    if kind == "json":
        return _parse_json(text, origin)
    if kind == "aida":
        return parse_aida(text, origin)
    if kind == "libcpuid":
        return parse_libcpuid(text, origin)
    if kind == "cpuid-r":
        return parse_cpuid_r(text, origin)
    raise DumpError(origin, NOT_A_DUMP)


def _parse_json(text: str, origin: str) -> RawCapture:
    """The project's JSON, held to the same rules as the text formats.

    The document's own "source" (say "cpuid-instruction") is kept in
    ``extra["json_source"]``: the capture itself is a replay. XCR0 is kept:
    the project's own JSON records it when the probe was live, so a replay
    shows the same enabled XSAVE state as the host did; so is a recorded
    hypervisor offer (and the reason there was none).
    """
    try:
        doc = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as err:
        raise DumpError(
            origin, f"invalid JSON: {err.msg} (column {err.colno})", err.lineno
        ) from None
    except (ValueError, RecursionError) as err:
        raise DumpError(origin, f"invalid JSON: {err}") from None
    try:
        parsed = capture_from_json(doc, origin=origin)
    except RawDataError as err:
        raise DumpError(origin, str(err)) from None
    # a replayed dump saved as JSON keeps the leaf set of the tool that recorded it
    builder = CaptureBuilder(origin, SOURCE_JSON, BY_SOURCE.get(parsed.source, JSON))
    for cpu in parsed.cpus:
        builder.start_cpu(cpu.index, None)
        for (leaf, sub), regs in cpu.leaves.items():
            builder.add(leaf, sub, regs, None)
    built = builder.build()
    xcr0 = {cpu.index: cpu.xcr0 for cpu in parsed.cpus}
    cpus = tuple(replace(cpu, xcr0=xcr0.get(cpu.index)) for cpu in built.cpus)
    extra = {**parsed.extra, "json_source": parsed.source}
    return RawCapture(
        cpus=cpus,
        source=SOURCE_JSON,
        microcode=parsed.microcode,
        origin=origin,
        extra=extra,
        warnings=(*parsed.warnings, *built.warnings),
        offer=parsed.offer,  # a recorded hypervisor offer replays as recorded
        offer_missing=parsed.offer_missing,
    )
