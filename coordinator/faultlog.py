"""Rate-limited fault logging: one line per distinct fault per minute."""

from __future__ import annotations

import logging
import threading
import time


class FaultLog:
    """One log line per distinct fault per minute: a full disk must not flood the log."""

    def __init__(
        self, logger: logging.Logger, every: float = 60.0, level: int = logging.ERROR
    ) -> None:
        self.logger = logger
        self.level = level
        self.every = every
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def log(self, what: str, exc: BaseException) -> None:
        line = f"{what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        now = time.monotonic()
        with self._lock:
            last = self._seen.get(line)
            if last is not None and now - last[0] < self.every:
                self._seen[line] = (last[0], last[1] + 1)
                return
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen[line] = (now, 0)
        repeats = f" (also {last[1]} more times in the last minute)" if last and last[1] else ""
        self.logger.log(self.level, "%s%s", line, repeats)
