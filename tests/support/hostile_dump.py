"""A dump of this host's processors whose brand string carries terminal escape sequences.

Made from the live host (`cpucompat probe --raw`) with leaves 0x80000002-4 rewritten,
so the tests do not depend on the machine they run on.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from .daemons import run_cli

HOSTILE_BRAND = "\x1b[2J\x1b]0;pwned\x07Evil\x1b[31m CPU\u202e"


def brand_registers(brand: str) -> list[tuple[int, int, int, int]]:
    """The three brand leaves (eax, ebx, ecx, edx) that spell ``brand`` (48 bytes, NUL padded)."""
    data = brand.encode("utf-8")[:47].ljust(48, b"\0")
    words = struct.unpack("<12I", data)
    return [tuple(words[i : i + 4]) for i in range(0, 12, 4)]  # type: ignore[misc]


def hostile_dump(folder: Path, brand: str = HOSTILE_BRAND) -> Path:
    """This host's raw CPUID dump with its brand leaves replaced by ``brand``."""
    probe = run_cli("probe", "--raw")
    assert probe.returncode == 0, probe.stderr
    regs = brand_registers(brand)
    text = probe.stdout
    for n, leaf in enumerate((0x80000002, 0x80000003, 0x80000004)):
        eax, ebx, ecx, edx = regs[n]
        text = re.sub(
            rf"(?m)^(\s*0x{leaf:08x} 0x00:) .*$",
            rf"\1 eax=0x{eax:08x} ebx=0x{ebx:08x} ecx=0x{ecx:08x} edx=0x{edx:08x}",
            text,
        )
    path = folder / "hostile-brand.txt"
    path.write_text(text)
    return path
