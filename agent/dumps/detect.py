"""Which dump format a text is, and turning a file's bytes into that text safely.

Detection looks for the first line that only one format writes, so a file
is never half-parsed by the wrong importer: the project's JSON starts with
``{``; AIDA64 writes ``------[ ... ]------`` section headers, ``CPU#000
AffMask`` or ``CPUID LLLLLLLL`` lines; libcpuid writes ``version=``,
``basic_cpuid[N]=`` style keys or its underscored CPU headers; ``cpuid -r``
writes ``CPU N:`` alone on a line or ``0xLLLLLLLL 0xSS: eax=`` lines.
"""

from __future__ import annotations

import codecs
import os
import re
from typing import Literal

from .errors import DumpError

Format = Literal["json", "aida", "libcpuid", "cpuid-r"]

MAX_DUMP_BYTES = 64 * 1024 * 1024
"""The largest real dump is about 1.5 MB; anything this big is not a CPUID dump."""

NOT_A_DUMP = (
    "not a CPUID dump: expected AIDA64/InstLatx64 text, libcpuid raw, "
    "cpuid -r output or cpucompat JSON"
)

_SIGNATURE = re.compile(
    r"(?P<aida>-{2,}\[ .*\]-{2,}\s*$|CPU#\d+ AffMask:|CPUID Registers \(CPU #\d+(?: Virtual)?\):"
    r"|CPUID [0-9A-Fa-f]{8}[:\s])"
    r"|(?P<libcpuid>(?:basic_cpuid|ext_cpuid|intel_fn\w+|amd_fn\w+)\[\d+\]\s*="
    r"|_{3,}\s*Logical CPU #\d+\s*_{3,}\s*$|version=)"
    r"|(?P<cpuid_r>\s*CPU(?:\s+\d+)?:\s*$|\s*0x[0-9A-Fa-f]{8}\s+0x[0-9A-Fa-f]+:\s*eax=)"
)


def detect_format(text: str) -> Format | None:
    """The format of ``text``, or None when no line is typical of any supported format."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        return "json"
    match = _SIGNATURE.match
    for line in stripped.splitlines():
        m = match(line)
        if m is None:
            continue
        if m.lastgroup == "aida":
            return "aida"
        if m.lastgroup == "libcpuid":
            return "libcpuid"
        return "cpuid-r"
    return None


def decode_dump(data: bytes, origin: str) -> str:
    """The text of a dump file: UTF-8 (UTF-16 only with a BOM), never with NUL bytes."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, name = "utf-16", "UTF-16"
    else:
        encoding, name = "utf-8-sig", "UTF-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1 if encoding == "utf-8-sig" else None
        bad = data[err.start : err.start + 1].hex()
        raise DumpError(
            origin, f"undecodable byte 0x{bad} at offset {err.start}: expected {name} text", line
        ) from None
    check_text(text, origin)
    return text


def check_text(text: str, origin: str) -> None:
    """Refuse empty and binary texts up front, with a message better than 'unknown format'."""
    if not text.strip():
        raise DumpError(origin, "empty file: " + NOT_A_DUMP)
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise DumpError(origin, "binary data (NUL byte): " + NOT_A_DUMP, line)


def read_dump_bytes(path: str | os.PathLike[str], origin: str) -> bytes:
    """The file's bytes, refusing files over MAX_DUMP_BYTES before reading them."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_DUMP_BYTES:
                raise DumpError(
                    origin, f"file is {size} bytes, more than the {MAX_DUMP_BYTES} a dump may have"
                )
            data = f.read(MAX_DUMP_BYTES + 1)  # pipes and devices report size 0
    except OSError as err:
        raise DumpError(origin, f"cannot read: {err.strerror or err}") from err
    if len(data) > MAX_DUMP_BYTES:
        raise DumpError(origin, f"more than the {MAX_DUMP_BYTES} bytes a dump may have")
    return data
