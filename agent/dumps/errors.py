"""The one error every dump importer raises, and the checks they all share.

A dump file is user input: whatever is wrong with it must come back as a
:class:`DumpError` naming the file and line, never as a stray ValueError or
IndexError from deep inside a parser. The per-CPU bookkeeping lives here too
so that every format applies the same duplicate, range and leaf-0 rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..raw import LeafKey, LogicalCpu, RawCapture, RawDataError, Regs, trim_to_reported_ranges

MAX_REG = 0xFFFF_FFFF
_QUOTE_LIMIT = 60


class DumpError(RawDataError):
    """A dump file that cannot be imported; the message names file, line and what was expected."""

    def __init__(self, origin: str, message: str, line: int | None = None) -> None:
        self.origin = origin
        self.line = line
        self.detail = message
        where = origin if line is None else f"{origin}:{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type[DumpError], tuple[str, str, int | None]]:
        # the default would call __init__ with the formatted message only
        return (DumpError, (self.origin, self.detail, self.line))


def quote(text: str) -> str:
    """A line as shown in an error: repr() so control bytes stay visible, cut when long."""
    text = text.strip()
    if len(text) > _QUOTE_LIMIT:
        text = text[:_QUOTE_LIMIT] + "..."
    return repr(text)


def expected(origin: str, line: int, what: str, got: str) -> DumpError:
    """The usual parse error: `file:12: expected 'X', got 'Y'`."""
    return DumpError(origin, f"expected {what!r}, got {quote(got)}", line)


def hex32(text: str, origin: str, line: int, what: str) -> int:
    """A hex field of a dump line; the regexes already admit only hex digits."""
    value = int(text, 16)
    if value > MAX_REG:
        raise DumpError(origin, f"{what} 0x{text} does not fit in 32 bits", line)
    return value


def split_lines(text: str) -> list[str]:
    """Lines numbered as an editor shows them, whatever the line endings."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


@dataclass
class _CpuLeaves:
    index: int
    line: int | None
    leaves: dict[LeafKey, Regs] = field(default_factory=dict)
    first_seen: dict[LeafKey, int | None] = field(default_factory=dict)
    conflicts: list[tuple[LeafKey, int | None]] = field(default_factory=list)


class CaptureBuilder:
    """Collects the leaves of each logical CPU of one file, then checks and trims them.

    Conflicting duplicates are only reported for leaves that survive trimming:
    libcpuid, for one, records leaves above the maximum twice (once per array)
    with different garbage, and those are dropped anyway.
    """

    def __init__(self, origin: str, source: str) -> None:
        self.origin = origin
        self.source = source
        self._cpus: list[_CpuLeaves] = []
        self._by_index: dict[int, _CpuLeaves] = {}
        self._current: _CpuLeaves | None = None

    def start_cpu(self, index: int | None, line: int | None) -> None:
        """Begin a logical CPU; ``index`` None means the next number after the last one."""
        if index is None:
            index = 0 if not self._cpus else max(self._by_index) + 1
        cur = self._current
        if cur is not None and cur.index == index and not cur.leaves:
            return  # two headers for the same CPU in a row (AIDA writes some that way)
        if index in self._by_index:
            first = self._by_index[index].line
            since = "" if first is None else f" (first on line {first})"
            raise DumpError(self.origin, f"logical CPU #{index} is given twice{since}", line)
        cpu = _CpuLeaves(index=index, line=line)
        self._cpus.append(cpu)
        self._by_index[index] = cpu
        self._current = cpu

    def add(self, leaf: int, subleaf: int, regs: Regs, line: int | None) -> None:
        """Record one leaf of the current CPU (starting CPU 0 when the file has no header)."""
        if self._current is None:
            self.start_cpu(None, line)
        cpu = self._current
        assert cpu is not None
        key = (leaf, subleaf)
        old = cpu.leaves.get(key)
        if old is None:
            cpu.leaves[key] = regs
            cpu.first_seen[key] = line
        elif old != regs:
            cpu.conflicts.append((key, line))

    def build(self) -> RawCapture:
        """The checked capture: leaf 0 in every CPU, no conflicting duplicates, ranges trimmed."""
        if not self._cpus:
            raise DumpError(self.origin, "no CPUID leaves found")
        cpus: list[LogicalCpu] = []
        for cpu in self._cpus:
            if (0, 0) not in cpu.leaves:
                raise DumpError(
                    self.origin,
                    f"logical CPU #{cpu.index} has no leaf 0 (vendor and max leaf)",
                    cpu.line,
                )
            kept = trim_to_reported_ranges(cpu.leaves)
            for key, line in cpu.conflicts:
                if key in kept:
                    first = cpu.first_seen[key]
                    since = "" if first is None else f" (first on line {first})"
                    raise DumpError(
                        self.origin,
                        f"logical CPU #{cpu.index}: leaf 0x{key[0]:08x} subleaf 0x{key[1]:x} "
                        f"given twice with different values{since}",
                        line,
                    )
            cpus.append(LogicalCpu(index=cpu.index, leaves=dict(sorted(kept.items()))))
        return RawCapture(cpus=tuple(cpus), source=self.source, origin=self.origin)
