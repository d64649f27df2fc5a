"""When the reporter's next cycle starts: one interval after this one started, not ended.

A cycle is a probe (CPUID on every logical CPU, or re-reading a replayed dump) and then a
heartbeat or report. Timing the wait after the cycle would add the probe's time to every
heartbeat period: a slow probe (a 256-CPU server under load) stretches the period the
coordinator sees, and three stretched periods can look like a stale host. So each cycle
has a monotonic deadline, its start plus the interval. A cycle that overruns its
deadline is followed at once, and the next deadline counts from that late start: the
agent never sends a burst of heartbeats to catch up on the ones it was late for.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Cadence:
    """Start-to-start timing of the reporter's cycles (``clock`` is monotonic seconds)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.overran = False  # the last finished cycle took longer than the interval

    def begin(self) -> None:
        """A cycle starts now: its deadline is now plus the interval."""
        self.started = self.clock()

    def remaining(self) -> float:
        """Seconds until the current cycle's deadline; 0 when it has passed (start at once).

        Sets ``overran`` for the caller to say so once; the late cycle's own start sets
        the next deadline, so lateness is never carried forward into a burst.
        """
        left = self.started + self.interval - self.clock()
        self.overran = left < 0
        return max(0.0, left)
