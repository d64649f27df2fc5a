"""The reporter's cycles start one interval apart, start to start, and never catch up."""

from __future__ import annotations

from cpucompat.agent.daemon.cadence import Cadence


def test_the_wait_is_what_is_left_of_the_interval_after_a_slow_cycle() -> None:
    now = [100.0]
    cadence = Cadence(30.0, clock=lambda: now[0])
    cadence.begin()
    now[0] += 12.0  # a slow probe and its heartbeat
    assert cadence.remaining() == 18.0  # next start 30 s after this one's, not 42 s
    assert not cadence.overran


def test_an_overrun_starts_the_next_cycle_at_once_and_counts_from_its_late_start() -> None:
    now = [0.0]
    cadence = Cadence(10.0, clock=lambda: now[0])
    cadence.begin()
    now[0] = 35.0  # three deadlines missed
    assert cadence.remaining() == 0.0 and cadence.overran
    cadence.begin()  # the next cycle starts at once, at 35
    now[0] = 37.0
    # one interval after the late start: no burst of cycles for the deadlines at 20 and 30
    assert cadence.remaining() == 8.0 and not cadence.overran
