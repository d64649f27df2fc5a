"""Progress of a long loop on a terminal: `reading dumps 1200/5000 (24%)` on stderr.

Only when stderr is a terminal: piped or redirected output (scripts, CI logs, `2>file`)
stays exactly what it was. Redrawn in place at most a few times a second and wiped
when done, so the command's own output follows on a clean line.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self, TextIO

LONG = 1000
"""Loops over more inputs than this show progress (fewer finish before anyone waits)."""
REDRAW_SECONDS = 0.2


class Progress:
    """Counts steps of one loop; a context manager that wipes its line on exit."""

    def __init__(
        self, label: str, total: int, stream: TextIO | None = None, minimum: int = LONG
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = sys.stderr if stream is None else stream
        self.shown = total > minimum and _is_terminal(self.stream)
        self._drawn_at = -REDRAW_SECONDS

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        now = time.monotonic()
        if self.shown and (now - self._drawn_at >= REDRAW_SECONDS or self.done >= self.total):
            self._drawn_at = now
            percent = 100 * self.done // max(self.total, 1)
            self._write(f"\r\x1b[K{self.label} {self.done}/{self.total} ({percent}%)")

    def close(self) -> None:
        if self.shown:
            self._write("\r\x1b[K")
            self.shown = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed terminal must not fail the command
            self.shown = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
