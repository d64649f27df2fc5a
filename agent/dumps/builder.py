"""Per-CPU bookkeeping every dump importer shares: duplicates, empty CPUs, ranges, completeness.

Each parser feeds leaves to a :class:`CaptureBuilder`; ``build`` applies the
same rules to every format, so a CPU given twice, a CPU without leaf 0 or a
file cut short is refused (or noted) the same way whatever tool wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..raw import LeafKey, LogicalCpu, RawCapture, Regs, trim_to_reported_ranges
from .completeness import CpuRecord, Recording, check_complete
from .errors import DumpError


@dataclass
class _CpuLeaves:
    index: int
    line: int | None
    leaves: dict[LeafKey, Regs] = field(default_factory=dict)
    first_seen: dict[LeafKey, int | None] = field(default_factory=dict)
    conflicts: list[tuple[LeafKey, int | None]] = field(default_factory=list)
    last_line: int | None = None


def _since(line: int | None) -> str:
    return "" if line is None else f" (first on line {line})"


class CaptureBuilder:
    """Collects the leaves of each logical CPU of one file, then checks and trims them.

    Conflicting duplicates are only reported for leaves that survive trimming:
    libcpuid, for one, records leaves above the maximum twice (once per array)
    with different garbage, and those are dropped anyway. A CPU given twice
    with the same leaves is kept once (with a warning); with different leaves
    it is an error. ``allow_empty`` (AIDA64 writes empty CPU sections) skips
    CPUs without leaves with a warning instead of refusing them.
    """

    def __init__(
        self, origin: str, source: str, recording: Recording, allow_empty: bool = False
    ) -> None:
        self.origin = origin
        self.source = source
        self.recording = recording
        self.allow_empty = allow_empty
        self._cpus: list[_CpuLeaves] = []
        self._by_index: dict[int, _CpuLeaves] = {}
        self._current: _CpuLeaves | None = None
        self._numbered = False

    def start_cpu(self, index: int | None, line: int | None) -> None:
        """Begin a logical CPU; ``index`` None means the next number after the last one."""
        if index is None:
            index = 0 if not self._by_index else max(self._by_index) + 1
        else:
            self._numbered = True
        cur = self._current
        if cur is not None and cur.index == index and not cur.leaves:
            return  # two headers for the same CPU in a row (AIDA writes some that way)
        cpu = _CpuLeaves(index=index, line=line)
        self._cpus.append(cpu)
        self._by_index.setdefault(index, cpu)
        self._current = cpu

    def add(self, leaf: int, subleaf: int, regs: Regs, line: int | None) -> None:
        """Record one leaf of the current CPU (starting CPU 0 when the file has no header)."""
        if self._current is None:
            self.start_cpu(None, line)
        cpu = self._current
        assert cpu is not None
        if line is not None:
            cpu.last_line = line
        key = (leaf, subleaf)
        old = cpu.leaves.get(key)
        if old is None:
            cpu.leaves[key] = regs
            cpu.first_seen[key] = line
        elif old != regs:
            cpu.conflicts.append((key, line))

    def _checked(self, cpu: _CpuLeaves) -> dict[LeafKey, Regs]:
        """The CPU's leaves inside its reported ranges, refusing leaf-0-less CPUs and conflicts."""
        if (0, 0) not in cpu.leaves:
            raise DumpError(
                self.origin,
                f"logical CPU #{cpu.index} has no leaf 0 (vendor and max leaf)",
                cpu.line,
            )
        kept = trim_to_reported_ranges(cpu.leaves)
        for key, line in cpu.conflicts:
            if key in kept:
                raise DumpError(
                    self.origin,
                    f"logical CPU #{cpu.index}: leaf 0x{key[0]:08x} subleaf 0x{key[1]:x} "
                    f"given twice with different values{_since(cpu.first_seen[key])}",
                    line,
                )
        return dict(sorted(kept.items()))

    def build(self) -> RawCapture:
        """The checked capture: leaf 0 in every CPU, no conflicting duplicates, ranges trimmed,
        every declared leaf present (see :mod:`.completeness`)."""
        if not self._cpus:
            raise DumpError(self.origin, "no CPUID leaves found")
        repeats: list[str] = []
        empty: dict[int, int | None] = {}
        kept: dict[int, CpuRecord] = {}
        for cpu in self._cpus:
            if not cpu.leaves:
                if not self.allow_empty:
                    raise DumpError(
                        self.origin,
                        f"logical CPU #{cpu.index} has no CPUID leaves: the file is cut "
                        "short or damaged; take the dump again",
                        cpu.line,
                    )
                empty.setdefault(cpu.index, cpu.line)
                continue
            leaves = self._checked(cpu)
            previous = kept.get(cpu.index)
            if previous is None:
                kept[cpu.index] = CpuRecord(cpu.index, leaves, cpu.line, cpu.last_line)
                continue
            if previous.leaves != leaves:
                raise DumpError(
                    self.origin,
                    f"logical CPU #{cpu.index} is given twice with different leaves"
                    f"{_since(previous.line)}",
                    cpu.line,
                )
            repeats.append(
                f"logical CPU #{cpu.index} is given again{_on(cpu.line)} with the same "
                "leaves; kept once"
            )
        if not kept:
            raise DumpError(self.origin, "no CPUID leaves found")
        warnings = [
            f"logical CPU #{index}: empty section{_on(line)} skipped; its leaves are unknown"
            for index, line in empty.items()
            if index not in kept
        ]
        records = list(kept.values())
        listed = len(kept) + len(warnings)
        check_complete(self.origin, self.recording, records, listed, self._numbered)
        return RawCapture(
            cpus=tuple(LogicalCpu(index=r.index, leaves=r.leaves) for r in records),
            source=self.source,
            origin=self.origin,
            warnings=(*warnings, *repeats),
        )


def _on(line: int | None) -> str:
    return "" if line is None else f" on line {line}"
