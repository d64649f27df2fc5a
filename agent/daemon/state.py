"""The agent's current view of its processors, shared by the server and the reporter."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..decode import decode
from ..profile import Profile
from ..raw import RawCapture

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


def default_host_id() -> str:
    """The machine's stable identity: systemd's machine-id, else the hostname."""
    import socket

    for path in MACHINE_ID_FILES:
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value:
            return value
    return socket.gethostname()


@dataclass(frozen=True)
class Snapshot:
    """One probe's result: the decoded profile and when it was taken."""

    profile: Profile
    taken_at: float


class ProfileHolder:
    """Keeps the latest probe; `refresh` probes again and says whether anything changed."""

    def __init__(self, capture: Callable[[], RawCapture]) -> None:
        self._capture = capture
        self._lock = threading.Lock()
        self._current = Snapshot(decode(capture()), time.time())

    @property
    def current(self) -> Snapshot:
        with self._lock:
            return self._current

    def refresh(self) -> tuple[Snapshot, Snapshot]:
        """Probe now; returns (previous, new)."""
        fresh = Snapshot(decode(self._capture()), time.time())
        with self._lock:
            previous, self._current = self._current, fresh
        return previous, fresh


class Backoff:
    """Capped exponential backoff with full jitter, so many agents do not retry in step."""

    def __init__(
        self, base: float = 0.2, cap: float = 30.0, rng: random.Random | None = None
    ) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 32)
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
